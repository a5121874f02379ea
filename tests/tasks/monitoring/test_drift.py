"""Drift of a batch against a reference profile (tasks/drift.py, profiles from tasks/model_report.py).

Tolerances used below, and why:
- PSI of a sample drawn from the profile's own distribution: PSI is about chi-square / n, so over
  B buckets its expectation is about (B - 1) * (1/n_live + 1/n_reference), i.e. ~0.0006 for 10 bins,
  20k live and 100k reference rows. 0.01 is more than ten times that and 20x below the 0.2 alarm.
- KS against the profile vs `ks_2samp` against the reference rows: the profile keeps the 201
  quantiles at levels k/200 and interpolates the CDF linearly between them. At each kept quantile
  the interpolated CDF equals the reference's empirical CDF (up to the 1/n_reference of the
  quantile definition); between two of them both CDFs are monotone and lie in [k/200, (k+1)/200],
  so they never differ by more than 1/200 = 0.005. The statistics therefore agree to 0.005 plus
  O(1/n): 0.01 leaves a factor of two.
- KS on a 1M-row batch (subsampled to KS_MAX_ROWS) vs on all of it: the two statistics differ by
  at most the KS distance between the subsample and the batch, whose 99.9% quantile is about
  1.95 / sqrt(50_000) ~ 0.0087 for a 50k-row subsample; 0.01 covers it.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from inferloop.core.dataset import DatasetSpec
from inferloop.tasks.model.evaluation import categorical_profile, numeric_profile, reference_profile
from inferloop.tasks.monitoring.drift import (
    KS_MAX_ROWS,
    PSI_FLOOR,
    categorical_drift,
    feature_drift,
    kolmogorov_smirnov,
    numeric_drift,
    population_stability_index,
    prediction_drift,
)

PSI_ALARM = 0.2  # the default INFERLOOP_DRIFT_PSI_THRESHOLD
SAME_PSI = 0.01  # see the module docstring
KS_TOLERANCE = 0.01  # see the module docstring


def normal(rng, n):
    return rng.normal(50.0, 10.0, n)


def lognormal(rng, n):
    return rng.lognormal(3.0, 1.0, n)


def counts(rng, n):
    return rng.poisson(3.0, n).astype(float)


def shares(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values / values.sum()


# ---------------------------------------------------------------- population_stability_index


def test_psi_matches_the_hand_computed_value():
    # expected [0.5, 0.5], actual [0.25, 0.75]:
    #   (0.25 - 0.5) * ln(0.25 / 0.5) = -0.25 * -ln 2   = 0.25 * ln 2
    #   (0.75 - 0.5) * ln(0.75 / 0.5) =  0.25 * ln 1.5  = 0.25 * ln 1.5
    #   sum = 0.25 * (ln 2 + ln 1.5) = 0.25 * ln 3 = 0.274653...
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(math.log(3) / 4, abs=1e-12)


def test_an_empty_bucket_is_floored_to_a_finite_psi():
    # expected [0.5, 0.5, 0], actual [0.5, 0.4, 0.1]; the empty bucket counts as PSI_FLOOR = 1e-4:
    #   bucket 1: 0
    #   bucket 2: (0.4 - 0.5) * ln(0.4 / 0.5)        = 0.1 * ln 1.25       = 0.0223144
    #   bucket 3: (0.1 - 1e-4) * ln(0.1 / 1e-4)      = 0.0999 * ln 1000    = 0.6900847
    psi = population_stability_index([0.5, 0.5, 0.0], [0.5, 0.4, 0.1])
    assert math.isfinite(psi)
    assert psi == pytest.approx(0.1 * math.log(1.25) + (0.1 - PSI_FLOOR) * math.log(0.1 / PSI_FLOOR))


bucket_counts = st.lists(st.integers(0, 1_000), min_size=2, max_size=12).filter(lambda c: sum(c) > 0)


@given(st.data())
def test_psi_is_zero_for_identical_shares_and_otherwise_positive_symmetric_and_bounded(data):
    expected = shares(data.draw(bucket_counts, label="expected counts"))
    actual_counts = data.draw(
        st.lists(st.integers(0, 1_000), min_size=len(expected), max_size=len(expected)).filter(
            lambda c: sum(c) > 0
        ),
        label="actual counts",
    )
    actual = shares(actual_counts)
    psi = population_stability_index(expected, actual)
    assert population_stability_index(expected, expected) == 0.0
    # Every term (a - e) * ln(a / e) is >= 0: both factors have the sign of a - e.
    assert psi >= 0.0
    # Exactly symmetric: swapping a and e flips the sign of both factors of every term, and the
    # floor is applied to both sides alike (PSI is the symmetrised KL divergence).
    assert population_stability_index(actual, expected) == pytest.approx(psi, rel=1e-12, abs=1e-15)
    # Finite even with empty buckets: |a - e| sums to at most 2 and |ln(a / e)| <= ln(1 / floor).
    assert psi <= 2 * math.log(1 / PSI_FLOOR) + 1e-9


# ---------------------------------------------------------------- numeric_drift


@pytest.mark.parametrize("draw", [normal, lognormal, counts], ids=["normal", "lognormal", "integer counts"])
def test_a_sample_of_the_training_distribution_does_not_drift(draw):
    reference = draw(np.random.default_rng(1), 100_000)
    live = draw(np.random.default_rng(2), 20_000)
    drift = numeric_drift("x", pd.Series(live), numeric_profile(pd.Series(reference)))
    assert drift.kind == "numeric" and drift.rows == len(live)
    assert drift.psi < SAME_PSI


def test_a_shifted_sample_drifts_in_psi_and_ks():
    profile = numeric_profile(pd.Series(normal(np.random.default_rng(1), 100_000)))
    same = numeric_drift("x", pd.Series(normal(np.random.default_rng(2), 20_000)), profile)
    shifted = numeric_drift("x", pd.Series(normal(np.random.default_rng(2), 20_000) + 10.0), profile)
    assert same.psi < SAME_PSI and same.ks < 0.02 and same.ks_pvalue > 0.001
    # One standard deviation: the normal CDFs differ by up to 2 * Phi(0.5) - 1 = 0.383.
    assert shifted.psi > 2 * PSI_ALARM
    assert shifted.ks > 0.3
    assert shifted.ks_pvalue < 1e-6


@pytest.mark.parametrize(
    ("draw", "shift"),
    [
        *[(draw, shift) for draw in (normal, lognormal) for shift in (0.0, 0.1, 0.5)],
        # Integer shifts keep the batch on the reference's integers, so the ties line up.
        (counts, 0.0),
        (counts, 1.0),
    ],
    ids=lambda v: v.__name__ if callable(v) else f"shift {v} sd",
)
def test_ks_agrees_with_ks_2samp_against_the_reference_rows(draw, shift):
    reference = draw(np.random.default_rng(3), 100_000)
    live = draw(np.random.default_rng(4), 20_000) + shift * (reference.std() if draw is not counts else 1)
    drift = numeric_drift("x", pd.Series(live), numeric_profile(pd.Series(reference)))
    assert drift.ks == pytest.approx(stats.ks_2samp(reference, live).statistic, abs=KS_TOLERANCE)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_ks_on_a_subsample_of_a_large_batch_matches_the_full_computation(shift):
    reference = np.asarray(numeric_profile(pd.Series(normal(np.random.default_rng(5), 100_000)))["sample"])
    live = normal(np.random.default_rng(6), 1_000_000) + shift * 10.0
    assert len(live) > KS_MAX_ROWS
    levels = np.linspace(0.0, 1.0, len(reference))
    full = stats.kstest(live, lambda x: np.interp(x, reference, levels)).statistic
    subsampled, _ = kolmogorov_smirnov(live, reference)
    assert subsampled == pytest.approx(full, abs=KS_TOLERANCE)


def test_nulls_in_a_feature_that_had_none_drift():
    profile = numeric_profile(pd.Series(normal(np.random.default_rng(1), 100_000)))
    assert profile["null_share"] == 0.0
    live = normal(np.random.default_rng(2), 20_000)
    live[np.random.default_rng(3).random(len(live)) < 0.3] = np.nan
    drift = numeric_drift("x", pd.Series(live), profile)
    # The null bucket alone: (0.3 - 1e-4) * ln(0.3 / 1e-4) = 0.2999 * ln 3000 ~ 2.4.
    assert drift.psi > 2.0
    assert drift.ks < 0.02  # the values that are there still look like the reference


def test_the_null_share_the_profile_had_is_not_drift():
    reference = normal(np.random.default_rng(1), 100_000)
    reference[np.random.default_rng(7).random(len(reference)) < 0.3] = np.nan
    profile = numeric_profile(pd.Series(reference))
    live = normal(np.random.default_rng(2), 20_000)
    live[np.random.default_rng(8).random(len(live)) < 0.3] = np.nan
    assert profile["null_share"] == pytest.approx(0.3, abs=0.01)
    assert numeric_drift("x", pd.Series(live), profile).psi < SAME_PSI


def test_a_binary_numeric_feature_whose_share_of_ones_moves_drifts():
    profile = numeric_profile(pd.Series((np.random.default_rng(1).random(100_000) < 0.1).astype(float)))
    live = (np.random.default_rng(2).random(20_000) < 0.9).astype(float)
    assert numeric_drift("flag", pd.Series(live), profile).psi > PSI_ALARM


# ---------------------------------------------------------------- categorical_drift


def categories(counts: dict[str, int], seed: int) -> pd.Series:
    values = np.concatenate([[name] * n for name, n in counts.items()]).astype(object)
    return pd.Series(np.random.default_rng(seed).permutation(values))


def test_the_same_category_frequencies_do_not_drift():
    profile = categorical_profile(categories({"web": 500, "pos": 300, "atm": 200}, 0))
    drift = categorical_drift("channel", categories({"web": 1000, "pos": 600, "atm": 400}, 1), profile)
    assert drift.kind == "categorical" and drift.rows == 2000
    assert drift.psi == pytest.approx(0.0, abs=1e-9)
    assert drift.unseen_share == 0.0


def test_unseen_categories_are_counted_and_raise_psi():
    profile = categorical_profile(categories({"web": 500, "pos": 300, "atm": 200}, 0))
    live = categories({"web": 450, "pos": 270, "atm": 180, "crypto": 100}, 1)
    drift = categorical_drift("channel", live, profile)
    assert drift.unseen_share == pytest.approx(0.1)
    # Known shares keep their ratios (0.45 / 0.5 = 0.27 / 0.3 = 0.18 / 0.2 = 0.9), so
    #   known:  sum((0.9 s - s) * ln 0.9) = -0.1 * ln 0.9 = 0.0105361
    #   unseen: (0.1 - 1e-4) * ln(0.1 / 1e-4)           = 0.6900847
    assert drift.psi == pytest.approx(-0.1 * math.log(0.9) + (0.1 - PSI_FLOOR) * math.log(1000), rel=1e-6)


def test_nulls_are_a_bucket_of_their_own():
    profile = categorical_profile(categories({"web": 500, "pos": 500}, 0))
    live = categories({"web": 400, "pos": 400}, 1).reindex(range(1000))  # 200 nulls
    drift = categorical_drift("channel", live, profile)
    assert drift.unseen_share == 0.0
    assert drift.psi > PSI_ALARM


def test_integer_categories_match_their_own_profile():
    days = pd.Series(np.random.default_rng(0).integers(1, 8, 10_000))
    drift = categorical_drift("day", days, categorical_profile(days))
    assert drift.unseen_share == 0.0 and drift.psi < SAME_PSI


# ---------------------------------------------------------------- feature_drift, prediction_drift

SPEC = DatasetSpec(
    name="toy",
    id_column="id",
    time_column="event_time",
    label={"column": "target"},
    features={
        "amount": "numeric",
        "age": "numeric",
        "logins": "numeric",
        "channel": "categorical",
        "country": "categorical",
    },
)


def toy_frame(rows: int, seed: int, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, rows),
            "age": rng.normal(40.0, 12.0, rows) + age_shift,
            "logins": rng.poisson(2.0, rows).astype(float),
            "channel": rng.choice(["web", "pos", "atm"], rows, p=[0.5, 0.3, 0.2]),
            "country": rng.choice(["DE", "FR", "NL", "US"], rows, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def toy_scores(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).beta(1.0, 8.0, rows)


@pytest.fixture(scope="module")
def profile() -> dict:
    return reference_profile(toy_frame(100_000, 0), toy_scores(100_000, 0), SPEC)


def test_feature_drift_flags_only_the_shifted_column(profile):
    drifts = feature_drift(toy_frame(20_000, 1, age_shift=12.0), profile, SPEC, PSI_ALARM)
    assert [d.feature for d in drifts] == list(SPEC.features)
    assert [d.feature for d in drifts if d.flagged] == ["age"]
    assert all(d.psi < SAME_PSI for d in drifts if d.feature != "age")
    assert {d.feature: d.kind for d in drifts} == dict(SPEC.features)


def test_feature_drift_flags_nothing_on_a_batch_like_the_training_rows(profile):
    drifts = feature_drift(toy_frame(20_000, 1), profile, SPEC, PSI_ALARM)
    assert not any(d.flagged for d in drifts)


def test_prediction_drift_is_near_zero_for_the_same_score_distribution(profile):
    assert prediction_drift(toy_scores(20_000, 1), profile) < SAME_PSI
    assert prediction_drift(np.random.default_rng(1).beta(2.0, 4.0, 20_000), profile) > PSI_ALARM
