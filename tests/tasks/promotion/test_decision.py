from hypothesis import given, settings
from hypothesis import strategies as st

from inferloop.tasks.promotion.decision import (
    PRIMARY_METRIC,
    PromotionGates,
    decide_promotion,
    signature_compatible,
)

unit = st.floats(0.0, 1.0, allow_nan=False)
metrics = st.fixed_dictionaries({"roc_auc": unit, "pr_auc": unit})
gates = st.builds(
    PromotionGates,
    min_roc_auc=unit,
    min_improvement=st.floats(0.0, 0.1),
    max_pr_auc_regression=st.floats(0.0, 0.2),
)


@settings(max_examples=300)
@given(
    challenger=metrics,
    champion=st.none() | metrics,
    data_gate=st.booleans(),
    signature=st.booleans(),
    gates=gates,
)
def test_a_failing_gate_never_promotes_and_the_champion_metric_never_drops(
    challenger, champion, data_gate, signature, gates
):
    verdict, reason, checks = decide_promotion(challenger, champion, data_gate, signature, gates)
    if verdict == "promote":
        assert all(c.passed for c in checks)
        assert data_gate and signature and challenger[PRIMARY_METRIC] >= gates.min_roc_auc
        if champion is not None:
            assert challenger[PRIMARY_METRIC] >= champion[PRIMARY_METRIC]
            assert challenger["pr_auc"] >= champion["pr_auc"] - gates.max_pr_auc_regression
    else:
        failed = [c for c in checks if not c.passed]
        assert failed and all(c.name in reason for c in failed)


def test_bootstrap_needs_only_the_absolute_gate():
    floor = PromotionGates(min_roc_auc=0.7, min_improvement=0.0, max_pr_auc_regression=0.0)
    assert decide_promotion({"roc_auc": 0.71, "pr_auc": 0.1}, None, True, True, floor)[0] == "promote"
    verdict, reason, _ = decide_promotion({"roc_auc": 0.69, "pr_auc": 0.1}, None, True, True, floor)
    assert verdict == "reject" and "min_roc_auc" in reason


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
