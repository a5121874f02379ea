"""The paired bootstrap behind promotion and the replay's verdict (tasks/model/comparison.py):
whole partitions resampled as row weights, rows within each partition when there are few, and
metrics under weights exactly as scikit-learn computes them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    roc_auc_score,
)

from inferloop.tasks.model.comparison import (
    METRICS,
    MIN_BLOCKS,
    PROBABILITY_SCORE,
    MetricDifference,
    WeightedScores,
    paired_difference,
)
from inferloop.tasks.monitoring.performance import label_metrics


def two_models(good_signal: float, seed: int = 1, days: int = 30, rows: int = 40) -> tuple:
    """Model a's scores carry `good_signal` of the label, model b's none; the same rows.
    Returns target, scores a, scores b, day of each row."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, days * rows)
    noise_a, noise_b = rng.random(days * rows), rng.random(days * rows)
    return (
        target,
        good_signal * target + (1 - good_signal) * noise_a,
        noise_b,
        np.repeat(np.arange(days), rows),
    )


def right_on(share: float, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scores of a model that is right on about `share` of the rows, independently per row."""
    return np.where(rng.random(len(target)) < share, target, 1 - target).astype(float)


@pytest.mark.parametrize("metric", METRICS)
def test_a_planted_difference_is_clear_and_none_is_not(metric):
    target, better, worse, days = two_models(good_signal=0.6)
    clear = paired_difference(metric, target, better, worse, days, 0.5, confidence=0.9, resamples=1000)
    assert clear.verdict == "clearly better" and clear.lower > 0
    opposite = paired_difference(metric, target, worse, better, days, 0.5, confidence=0.9, resamples=1000)
    assert opposite.verdict == "clearly worse" and opposite.upper < 0

    target, same_a, _, days = two_models(good_signal=0.0, seed=2)
    _, same_b, _, _ = two_models(good_signal=0.0, seed=3)
    none = paired_difference(metric, target, same_a, same_b, days, 0.5, confidence=0.9, resamples=1000)
    assert none.verdict == "no clear difference" and none.lower < 0 < none.upper
    assert (none.rows, none.groups, none.confidence) == (1200, 30, 0.9)
    # Seeded: the same inputs give the same interval.
    again = paired_difference(metric, target, same_a, same_b, days, 0.5, confidence=0.9, resamples=1000)
    assert again == none


def test_the_point_estimates_are_the_metrics_on_all_rows():
    target, a, b, days = two_models(good_signal=0.3)

    def expected(scores):
        return label_metrics(target, scores, 0.5) | {PROBABILITY_SCORE: 1 - brier_score_loss(target, scores)}

    for metric in METRICS:
        compared = paired_difference(metric, target, a, b, days, threshold=0.5)
        expected_a, expected_b = expected(a)[metric], expected(b)[metric]
        assert (compared.a, compared.b) == pytest.approx((expected_a, expected_b))
        assert compared.difference == pytest.approx(expected_a - expected_b)


@pytest.mark.parametrize(("groups", "rows_per_group"), [(4, 60), (1, 240)])
def test_with_few_partitions_rows_are_resampled_within_each(groups, rows_per_group):
    # Resampling 4 (or 1) whole partitions would say next to nothing (with one, every resample
    # is the same rows: a zero-width interval); resampling rows within each keeps the honest
    # width of a 2-point difference in accuracy on 240 rows.
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, groups * rows_per_group)
    champion, challenger = right_on(0.70, target, rng), right_on(0.72, target, rng)
    partition = np.repeat(np.arange(groups), rows_per_group)
    noisy = paired_difference("accuracy", target, challenger, champion, partition, threshold=0.5)
    assert noisy.groups == groups < MIN_BLOCKS and noisy.confidence == 0.8
    assert noisy.lower < 0 < noisy.upper
    assert noisy.upper - noisy.lower > 0.05
    assert noisy.verdict == "no clear difference"


def test_with_enough_partitions_whole_ones_are_resampled():
    # Model a is right on every row of some days and wrong on every row of others: its rows are
    # not independent evidence. Resampling days sees that; resampling rows (each row its own
    # partition) would report an interval several times narrower.
    rng = np.random.default_rng(5)
    days, rows = 20, 50
    target = rng.integers(0, 2, days * rows)
    day_of_row = np.repeat(np.arange(days), rows)
    a = np.where(np.repeat(rng.random(days) < 0.7, rows), target, 1 - target).astype(float)
    b = right_on(0.7, target, rng)
    by_day = paired_difference("accuracy", target, a, b, day_of_row, threshold=0.5)
    by_row = paired_difference("accuracy", target, a, b, np.arange(days * rows), threshold=0.5)
    assert (by_day.groups, by_row.groups) == (days, days * rows)
    assert by_day.upper - by_day.lower > 2 * (by_row.upper - by_row.lower)


def test_hours_of_a_day_are_resampled_as_that_day_where_there_are_enough_days():
    # Model a is right on every hour of some days and wrong on every hour of others (a day's
    # regime): resampling hours would see 24 times the independent evidence there is.
    rng = np.random.default_rng(5)
    days, hours, rows = 20, 24, 2
    target = rng.integers(0, 2, days * hours * rows)
    hour_of_row = np.repeat(pd.date_range("2026-03-01", periods=days * hours, freq="h").to_pydatetime(), rows)
    a = np.where(np.repeat(rng.random(days) < 0.7, hours * rows), target, 1 - target).astype(float)
    b = right_on(0.7, target, rng)
    by_day = paired_difference("accuracy", target, a, b, hour_of_row, threshold=0.5)
    by_hour = paired_difference("accuracy", target, a, b, np.arange(len(target)) // rows, threshold=0.5)
    assert (by_day.groups, by_day.block, by_hour.groups, by_hour.block) == (
        days,
        "day",
        days * hours,
        "partition",
    )
    assert by_day.upper - by_day.lower > 2 * (by_hour.upper - by_hour.lower)
    assert f"in {days} days" in by_day.describe()
    # The same as datetime64 keys; and fewer days than MIN_BLOCKS keep the hours as blocks.
    assert paired_difference("accuracy", target, a, b, hour_of_row.astype("datetime64[ns]"), 0.5) == by_day
    as_text = np.array([h.isoformat(sep=" ") for h in hour_of_row])  # how hindsight passes its keys
    assert paired_difference("accuracy", target, a, b, as_text, 0.5) == by_day
    assert (
        paired_difference("accuracy", target, a, b, np.array(["x"] * len(target)), 0.5).block == "partition"
    )
    first_days = slice(0, (MIN_BLOCKS - 1) * hours * rows)
    few = paired_difference(
        "accuracy", target[first_days], a[first_days], b[first_days], hour_of_row[first_days], 0.5
    )
    assert (few.groups, few.block) == ((MIN_BLOCKS - 1) * hours, "partition")


def test_daily_weekly_and_monthly_keys_are_blocks_as_they_are():
    target, better, worse, _ = two_models(good_signal=0.3, days=12)
    weeks = np.repeat(pd.date_range("2026-01-05", periods=12, freq="W-MON").date, 40)
    compared = paired_difference("accuracy", target, better, worse, weeks, 0.5)
    assert (compared.groups, compared.block) == (12, "partition")


def test_resamples_where_the_metric_is_undefined_are_skipped():
    # Positives only on day 0: every resample that misses it has one class, so no ROC AUC.
    rng = np.random.default_rng(11)
    days, rows = 12, 30
    target = np.zeros(days * rows, dtype=int)
    target[: rows // 2] = 1
    a, b = rng.random(days * rows) + 0.5 * target, rng.random(days * rows)
    day_of_row = np.repeat(np.arange(days), rows)
    compared = paired_difference("roc_auc", target, a, b, day_of_row, threshold=0.5)
    assert np.isfinite([compared.lower, compared.upper]).all()
    assert compared.lower <= compared.difference <= compared.upper

    one_class = paired_difference("roc_auc", np.zeros(days * rows), a, b, day_of_row, threshold=0.5)
    assert np.isnan([one_class.a, one_class.lower, one_class.upper]).all()
    assert one_class.verdict == "no clear difference"


def test_a_comparison_refuses_rows_that_do_not_pair_and_metrics_it_cannot_weigh():
    target, a, b, days = two_models(good_signal=0.5)
    with pytest.raises(ValueError, match="one group per row"):
        paired_difference("accuracy", target, a, b[1:], days, threshold=0.5)
    with pytest.raises(ValueError, match="log_loss"):
        paired_difference("log_loss", target, a, b, days, threshold=0.5)


@pytest.mark.parametrize(
    ("lower", "upper", "verdict"),
    [(0.01, 0.05, "clearly better"), (-0.05, -0.01, "clearly worse"), (-0.01, 0.05, "no clear difference")],
)
def test_the_verdict_needs_the_whole_interval_on_one_side_of_zero(lower, upper, verdict):
    difference = MetricDifference("f1", 0.6, 0.58, 0.02, lower, upper, 0.9, 500, 12)
    assert difference.verdict == verdict
    assert "90% interval" in difference.describe() and difference.to_dict()["groups"] == 12


def test_weighted_metrics_match_scikit_learn_with_ties_and_zero_weights():
    rng = np.random.default_rng(7)
    target = rng.integers(0, 2, 400)
    scores = np.round(rng.random(400), 1)  # many ties
    weights = rng.integers(0, 3, 400).astype(float)
    scored = WeightedScores(target, scores, threshold=0.5)
    predicted = (scores >= 0.5).astype(int)
    expected = {
        "accuracy": np.average(predicted == target, weights=weights),
        "roc_auc": roc_auc_score(target, scores, sample_weight=weights),
        "pr_auc": average_precision_score(target, scores, sample_weight=weights),
        "balanced_accuracy": balanced_accuracy_score(target, predicted, sample_weight=weights),
        "f1": f1_score(target, predicted, sample_weight=weights),
    }
    assert {name: scored.metric(name, weights) for name in expected} == pytest.approx(expected)
    unweighted = label_metrics(target, scores, 0.5)
    assert {name: scored.metric(name, np.ones(400)) for name in expected} == pytest.approx(
        {name: unweighted[name] for name in expected}
    )


def test_each_model_labels_rows_at_its_own_threshold():
    """The same scores at two thresholds: only the labels differ, and the comparison sees it."""
    rng = np.random.default_rng(4)
    target = (rng.random(2_000) < 0.1).astype(int)
    scores = np.where(target == 1, rng.uniform(0.2, 0.45, 2_000), rng.uniform(0.0, 0.25, 2_000))
    days = np.repeat(np.arange(20), 100)
    same = paired_difference("balanced_accuracy", target, scores, scores, days, threshold=0.5)
    assert same.difference == 0.0
    own = paired_difference("balanced_accuracy", target, scores, scores, days, 0.225, threshold_b=0.5)
    assert own.a == pytest.approx(balanced_accuracy_score(target, scores >= 0.225))
    assert own.b == pytest.approx(0.5)  # 0.5 labels nothing positive
    assert own.verdict == "clearly better"
