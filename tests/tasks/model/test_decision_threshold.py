"""A version's decision threshold, chosen on its holdout (tasks/model/decision_threshold.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from inferloop.core.settings import ScoringSettings
from inferloop.tasks.model.decision_threshold import FITTED_METRICS, choose_threshold

FITTED = ScoringSettings(threshold_policy="fitted", decision_threshold=0.5)
SKLEARN = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score, "f1": f1_score}


def metric_at(metric: str, target: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """The metric as scikit-learn computes it, independently of the module under test."""
    predicted = (scores >= threshold).astype(int)
    if metric == "f1":
        return f1_score(target, predicted, zero_division=0)
    return SKLEARN[metric](target, predicted)


def rare_positives(rows: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """5 % positives, scored by a model that ranks well but whose scores all stay below 0.5 (the
    probability of a rare class seldom reaches it)."""
    rng = np.random.default_rng(seed)
    target = (rng.random(rows) < 0.05).astype(int)
    scores = np.where(target == 1, rng.beta(4, 10, rows), rng.beta(1, 25, rows)) * 0.45
    return target, scores


@pytest.mark.parametrize("metric", ["balanced_accuracy", "f1"])
def test_with_rare_positives_the_fitted_threshold_labels_some_and_does_much_better(metric):
    target, scores = rare_positives()
    assert metric_at(metric, target, scores, 0.5) in (0.0, 0.5)  # 0.5 labels nothing positive
    choice = choose_threshold(target, scores, metric, FITTED, min_rows=200, label_rate=target.mean())
    assert choice.reason == {"balanced_accuracy": "label rate", "f1": "fitted"}[metric]
    assert 0 < choice.threshold < 0.5
    assert metric_at(metric, target, scores, choice.threshold) > metric_at(metric, target, scores, 0.5) + 0.2
    assert choice.value == pytest.approx(metric_at(metric, target, scores, choice.threshold))
    # On new rows of the same feed it does better too: not a fit to the holdout's noise.
    new_target, new_scores = rare_positives(seed=1)
    assert metric_at(metric, new_target, new_scores, choice.threshold) > 0.7


def test_a_small_holdout_keeps_the_fixed_threshold():
    target, scores = rare_positives(rows=150)
    choice = choose_threshold(target, scores, "balanced_accuracy", FITTED, min_rows=200, label_rate=0.05)
    assert (choice.threshold, choice.reason) == (0.5, "too few rows")


def test_a_single_class_holdout_keeps_the_fixed_threshold():
    choice = choose_threshold(np.zeros(500), np.linspace(0, 1, 500), "f1", FITTED, 200, label_rate=0.05)
    assert (choice.threshold, choice.reason) == (0.5, "single class")


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "accuracy"])
def test_accuracy_and_threshold_free_metrics_keep_the_fixed_threshold(metric):
    """For accuracy the fixed 0.5 is already best for calibrated scores (module docstring)."""
    target, scores = rare_positives()
    scoring = FITTED.model_copy(update={"decision_threshold": 0.3})
    choice = choose_threshold(target, scores, metric, scoring, 200, label_rate=target.mean())
    assert (choice.threshold, choice.reason) == (0.3, "fixed for this metric")


def test_the_fixed_policy_keeps_the_fixed_threshold():
    target, scores = rare_positives()
    fixed = ScoringSettings(threshold_policy="fixed", decision_threshold=0.5)
    assert choose_threshold(target, scores, "balanced_accuracy", fixed, 200, target.mean()).threshold == 0.5


def test_a_small_gain_on_the_holdout_keeps_the_fixed_threshold():
    """0.5 is on the best plateau (a gap between the classes' scores, 2 % of labels flipped): a
    threshold elsewhere on it gains nothing."""
    rng = np.random.default_rng(3)
    target = (rng.random(1_000) < 0.5).astype(int)
    scores = np.where(target == 1, rng.uniform(0.55, 1.0, 1_000), rng.uniform(0.0, 0.45, 1_000))
    target = np.where(rng.random(1_000) < 0.02, 1 - target, target)
    choice = choose_threshold(target, scores, "f1", FITTED, min_rows=200, label_rate=target.mean())
    assert (choice.threshold, choice.reason) == (0.5, "fixed is as good")


def test_balanced_accuracy_takes_the_label_rate_unless_it_does_clearly_worse_than_the_fixed_one():
    target, scores = rare_positives()
    assert choose_threshold(target, scores, "balanced_accuracy", FITTED, 200, 0.07).threshold == 0.07
    # Uncalibrated scores, every one above the label rate: labelling at it marks every row positive.
    uncalibrated = np.where(target == 1, 0.6, 0.3)
    choice = choose_threshold(target, uncalibrated, "balanced_accuracy", FITTED, 200, 0.05)
    assert (choice.threshold, choice.reason) == (0.5, "fixed is better")


def test_the_search_takes_the_middle_of_the_plateau_not_its_edge():
    # Negatives below 0.2, positives above 0.4: every threshold in between separates them.
    target = np.r_[np.zeros(300), np.ones(300)].astype(int)
    scores = np.r_[np.linspace(0.0, 0.2, 300), np.linspace(0.4, 0.45, 300)]
    choice = choose_threshold(target, scores, "f1", FITTED, min_rows=200, label_rate=0.5)
    assert choice.reason == "fitted"
    assert choice.threshold == pytest.approx(0.3, abs=0.02)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(2, 200).flatmap(
        lambda n: st.tuples(
            arrays(np.int64, n, elements=st.integers(0, 1)),
            arrays(np.float64, n, elements=st.floats(0.0, 1.0), unique=False),
        )
    ),
    metric=st.sampled_from(FITTED_METRICS),
    fixed=st.floats(0.05, 0.95),
)
def test_the_threshold_is_inside_0_1_and_never_worse_than_the_fixed_one_beyond_noise(rows, metric, fixed):
    target, scores = rows
    scoring = ScoringSettings(threshold_policy="fitted", decision_threshold=fixed)
    choice = choose_threshold(target, scores, metric, scoring, min_rows=0, label_rate=target.mean())
    assert 0 < choice.threshold < 1
    if choice.reason in ("fitted", "label rate"):
        chosen, baseline = (
            metric_at(metric, target, scores, choice.threshold),
            metric_at(metric, target, scores, fixed),
        )
        assert chosen >= baseline - choice.tolerance - 1e-12
        assert chosen == pytest.approx(choice.value)
    else:
        assert choice.threshold == fixed
