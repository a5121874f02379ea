from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inferloop.tasks.model.comparison import (
    PROBABILITY_SCORE,
    MetricDifference,
    comparable_metric,
    paired_difference,
)
from inferloop.tasks.promotion.decision import (
    FLOOR_METRIC,
    PromotionGates,
    decide_promotion,
    signature_compatible,
)

unit = st.floats(0.0, 1.0, allow_nan=False)
gates = st.builds(
    PromotionGates,
    metric=st.just("accuracy"),
    min_roc_auc=unit,
    min_improvement=st.floats(0.0, 0.1),
    max_metric_regression=st.floats(0.0, 0.2),
    min_rows=st.integers(1, 500),
)


@st.composite
def differences(draw) -> MetricDifference:
    challenger, champion = draw(unit), draw(unit)
    lower = draw(st.floats(-1.0, challenger - champion))
    upper = draw(st.floats(challenger - champion, 1.0))
    rows = draw(st.integers(1, 1_000))
    return MetricDifference(
        "accuracy", challenger, champion, challenger - champion, lower, upper, 0.8, rows, 5
    )


@settings(max_examples=300)
@given(
    challenger=st.fixed_dictionaries({"roc_auc": unit}),
    difference=st.none() | differences(),
    data_gate=st.booleans(),
    signature=st.booleans(),
    gates=gates,
)
def test_a_failing_gate_never_promotes_and_the_monitored_metric_never_drops(
    challenger, difference, data_gate, signature, gates
):
    verdict, reason, checks = decide_promotion(challenger, difference, data_gate, signature, gates)
    if verdict == "promote":
        assert all(c.passed for c in checks)
        assert data_gate and signature and challenger[FLOOR_METRIC] >= gates.min_roc_auc
        if difference is not None:
            assert difference.a >= difference.b  # on the compared rows
            assert difference.rows >= gates.min_rows
            assert difference.lower >= -gates.max_metric_regression
    else:
        failed = [c for c in checks if not c.passed]
        assert failed and all(c.name in reason for c in failed)


GATES = PromotionGates(
    "accuracy", min_roc_auc=0.7, min_improvement=0.0, max_metric_regression=0.02, min_rows=200
)


def test_bootstrap_needs_only_the_absolute_gate():
    assert decide_promotion({"roc_auc": 0.71}, None, True, True, GATES)[0] == "promote"
    verdict, reason, _ = decide_promotion({"roc_auc": 0.69}, None, True, True, GATES)
    assert verdict == "reject" and "min_roc_auc" in reason


def compared(challenger_right: float, days: int, rows_per_day: int = 50, seed: int = 0) -> MetricDifference:
    """Champion right on 70 % of rows; the challenger right on `challenger_right` of them."""
    rng = np.random.default_rng(seed)
    rows = days * rows_per_day
    target = rng.integers(0, 2, rows)
    champion = np.where(rng.random(rows) < 0.7, target, 1 - target).astype(float)
    challenger = np.where(rng.random(rows) < challenger_right, target, 1 - target).astype(float)
    groups = np.repeat(np.arange(days), rows_per_day)
    return paired_difference("accuracy", target, challenger, champion, groups, threshold=0.5)


def test_a_better_challenger_on_enough_rows_is_promoted():
    difference = compared(0.85, days=10)
    assert difference.lower > 0 and difference.rows == 500 and difference.groups == 10
    assert decide_promotion({"roc_auc": 0.8}, difference, True, True, GATES)[0] == "promote"


def test_a_few_dozen_rows_decide_nothing_however_good_they_look():
    verdict, reason, _ = decide_promotion({"roc_auc": 0.8}, compared(0.95, days=1), True, True, GATES)
    assert verdict == "reject" and "enough_evidence" in reason and "50 compared rows" in reason


def test_a_challenger_that_may_well_be_worse_is_refused_even_if_its_point_estimate_wins():
    noisy = compared(0.72, days=4, rows_per_day=60, seed=3)
    assert noisy.difference >= 0 and noisy.lower < -0.02
    verdict, reason, _ = decide_promotion({"roc_auc": 0.8}, noisy, True, True, GATES)
    assert verdict == "reject" and "beats_champion" in reason and "interval" in reason


def test_after_a_promotion_failed_in_hindsight_only_a_clearly_better_challenger_is_promoted():
    failures = ["promotion of v3 over v2 in hindsight: worse"]
    slightly = compared(0.72, days=10, rows_per_day=100, seed=6)
    assert slightly.difference >= 0 and slightly.lower <= 0 < slightly.lower + 0.02  # passes normally
    assert decide_promotion({"roc_auc": 0.8}, slightly, True, True, GATES)[0] == "promote"
    verdict, reason, _ = decide_promotion({"roc_auc": 0.8}, slightly, True, True, GATES, failures)
    assert verdict == "reject" and "clearly_better_after_failures" in reason and "v3 over v2" in reason
    clearly = compared(0.85, days=10)
    assert decide_promotion({"roc_auc": 0.8}, clearly, True, True, GATES, failures)[0] == "promote"


def test_a_class_weighing_metric_decides_nothing_on_a_few_rows_of_the_rarer_class():
    gates = replace(GATES, metric="roc_auc", min_class_rows=20)
    rng = np.random.default_rng(1)
    target = (rng.random(1_000) < 0.01).astype(int)  # about 10 positives in 1,000 rows
    champion, challenger = rng.random(1_000), np.where(target == 1, 0.9, rng.random(1_000))
    difference = paired_difference("roc_auc", target, challenger, champion, np.arange(1_000) // 50, 0.5)
    assert difference.rows == 1_000 and difference.rarer_class_rows == target.sum() < 20
    verdict, reason, _ = decide_promotion({"roc_auc": 0.9}, difference, True, True, gates, None, target.sum())
    assert verdict == "reject" and "of the rarer class vs minimum 20 (INFERLOOP_MIN_CLASS_ROWS)" in reason
    # Accuracy counts every row: the same rows are evidence enough for it.
    accuracy = paired_difference("accuracy", target, challenger, champion, np.arange(1_000) // 50, 0.5)
    checks = decide_promotion({"roc_auc": 0.9}, accuracy, True, True, replace(gates, metric="accuracy"))[2]
    assert next(c for c in checks if c.name == "enough_evidence").passed


def test_with_too_few_of_the_rarer_class_the_probabilities_decide_on_every_row():
    # Positives all but vanished (10 in 1,000): the champion still predicts 40 % of them, the
    # challenger has learnt the new rate. ROC AUC on 10 rows says nothing; the Brier score does.
    gates = replace(GATES, metric="roc_auc", min_class_rows=20)
    rng = np.random.default_rng(2)
    target = (rng.random(1_000) < 0.01).astype(int)
    champion, challenger = np.full(1_000, 0.4), np.full(1_000, 0.02)
    metric = comparable_metric("roc_auc", target, 20)
    assert metric == PROBABILITY_SCORE and comparable_metric("roc_auc", target, 5) == "roc_auc"
    assert comparable_metric("accuracy", target, 20) == "accuracy"
    difference = paired_difference(metric, target, challenger, champion, np.arange(1_000) // 50, 0.5)
    assert difference.lower > 0
    verdict, reason, checks = decide_promotion({"roc_auc": 0.5}, difference, True, True, gates, None, 10)
    assert verdict == "promote", reason
    floor = next(c for c in checks if c.name == "min_roc_auc")
    assert "too few to judge, the comparison with the champion decides" in floor.detail


def test_a_first_champion_is_not_judged_on_a_roc_auc_of_a_few_positives():
    gates = replace(GATES, min_class_rows=20)
    verdict, reason, _ = decide_promotion({"roc_auc": 0.95}, None, True, True, gates, None, 4)
    assert verdict == "reject" and "rests on 4 rows of the rarer class" in reason and "waiting" in reason
    assert decide_promotion({"roc_auc": 0.95}, None, True, True, gates, None, 20)[0] == "promote"


COLUMNS = [
    {"name": "amount", "type": "double", "required": True},
    {"name": "channel", "type": "string", "required": True},
]


def test_signature_compatibility():
    assert signature_compatible(COLUMNS, COLUMNS)
    assert signature_compatible(COLUMNS[:1], COLUMNS)  # needs fewer inputs: callers still fit
    assert not signature_compatible([*COLUMNS, {"name": "new", "type": "double"}], COLUMNS)
    retyped = [{"name": "amount", "type": "string", "required": True}, COLUMNS[1]]
    assert not signature_compatible(retyped, COLUMNS)
