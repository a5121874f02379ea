"""The hindsight verdict from the rows that followed a promotion (plain functions)."""

import numpy as np
import pytest

from inferloop.tasks.monitoring.hindsight import HindsightVerdict, judge


def scored(right_new: float, right_old: float, days: int = 8, rows_per_day: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = days * rows_per_day
    target = rng.integers(0, 2, rows)
    new = np.where(rng.random(rows) < right_new, target, 1 - target).astype(float)
    old = np.where(rng.random(rows) < right_old, target, 1 - target).astype(float)
    return target, new, old, np.repeat(np.arange(days), rows_per_day)


@pytest.mark.parametrize(
    ("right_new", "right_old", "expected"),
    [(0.9, 0.7, "better"), (0.7, 0.9, "worse"), (0.8, 0.8, "no clear difference")],
)
def test_the_verdict_is_clear_only_when_the_interval_is(right_new, right_old, expected):
    target, new, old, groups = scored(right_new, right_old)
    verdict, comparison = judge(target, new, old, groups, "accuracy", 0.5)
    assert verdict == expected
    assert comparison["rows"] == 800 and comparison["groups"] == 8
    assert (comparison["lower"] > 0) == (expected == "better") and (comparison["upper"] < 0) == (
        expected == "worse"
    )


def test_on_a_handful_of_positives_the_verdict_rests_on_the_probabilities_of_every_row():
    rng = np.random.default_rng(4)
    target = (rng.random(800) < 0.005).astype(int)  # about 4 positives
    calibrated, stale = np.full(800, 0.01), np.full(800, 0.4)  # the old model predicts 40 % positives
    groups = np.repeat(np.arange(8), 100)
    verdict, comparison = judge(target, calibrated, stale, groups, "roc_auc", 0.5, min_class_rows=10)
    assert comparison["metric"] == "1-brier" and comparison["rarer_class_rows"] == target.sum()
    assert verdict == "better"
    # With the guard off, the same rows are judged on ROC AUC, as before.
    assert judge(target, calibrated, stale, groups, "roc_auc", 0.5)[1]["metric"] == "roc_auc"


def test_the_description_says_what_was_compared_and_what_is_awaited():
    pending = HindsightVerdict("4", "3", "pending", 120, 200)
    assert pending.describe() == "promotion of v4 over v3: judged after 200 labelled rows (120 so far)"
    target, new, old, groups = scored(0.7, 0.9)
    verdict, comparison = judge(target, new, old, groups, "accuracy", 0.5)
    text = HindsightVerdict("4", "3", verdict, 800, 200, comparison).describe()
    assert text.startswith("promotion of v4 over v3 in hindsight: worse (accuracy 0.6987 vs 0.8912")
    assert "on the 800 labelled rows that followed" in text


def test_a_promotion_that_cannot_be_judged_says_why():
    gone = HindsightVerdict("4", "3", "not judged", 800, 200, {"reason": "v3 was deleted"})
    assert gone.describe() == "promotion of v4 over v3: not judged (v3 was deleted)"
