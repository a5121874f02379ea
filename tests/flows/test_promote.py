"""The promote and rollback flows: @champion moves only for a challenger that beats it on the same
recent labelled days; every decision is recorded on the version; rollback restores the previous
champion. (tests/e2e/test_promotion.py covers approval, concurrent promotions and error paths.)"""

import json

import pytest
from mlflow import MlflowClient

from inferloop.core.registry import BREACH_TAG
from inferloop.flows.promote import promote, rollback
from inferloop.tasks.promotion.decision import UnsafePromotionError
from tests.flows.conftest import AFTER, AFTER_BOTH, aliases, register


def decision_tags(tracking_uri: str, name: str, version: str) -> dict[str, str]:
    tags = MlflowClient(tracking_uri).get_model_version(name, version).tags
    return {k.removeprefix("inferloop.decision."): v for k, v in tags.items() if "decision." in k}


def test_a_better_challenger_takes_champion_and_rollback_restores_the_previous_one(pool, lake, feed):
    old = register(lake, pool.before, "champion")
    new = register(lake, pool.after, "challenger")

    decision = promote()  # default window: the labelled days after the challenger's training window
    assert (decision.verdict, decision.challenger_version, decision.champion_version) == ("promote", new, old)
    assert decision.evaluation.endswith(f"{AFTER_BOTH[0]}..{AFTER_BOTH[1]}")
    assert decision.challenger_metrics["roc_auc"] > decision.champion_metrics["roc_auc"]
    assert aliases(lake) == {"champion": new, "previous_champion": old}
    recorded = decision_tags(lake, decision.model_name, new)
    assert (recorded["verdict"], recorded["mode"], recorded["champion_before"]) == ("promote", "auto", old)
    assert json.loads(recorded["champion_metrics"])["roc_auc"] == round(
        decision.champion_metrics["roc_auc"], 5
    )

    # The old champion left with its breach open; restored, it starts without it.
    breach = json.dumps({"since": "2026-01-09", "reasons": ["drift"]})
    MlflowClient(lake).set_model_version_tag(decision.model_name, old, BREACH_TAG, breach)
    restored = rollback(decided_by="on-call")
    assert (restored.verdict, restored.challenger_version) == ("rollback", old)
    assert aliases(lake) == {"champion": old, "previous_champion": new}
    assert BREACH_TAG not in MlflowClient(lake).get_model_version(decision.model_name, old).tags
    recorded = decision_tags(lake, decision.model_name, old)
    assert (recorded["mode"], recorded["decided_by"], recorded["champion_before"]) == (
        "rollback",
        "on-call",
        new,
    )


def test_a_worse_challenger_is_refused_and_recorded_and_champion_stays(pool, lake, feed):
    champion = register(lake, pool.after, "champion")
    worse = register(lake, pool.before, "challenger")

    decision = promote()
    assert decision.verdict == "reject" and "beats_champion" in decision.reason
    assert decision.challenger_metrics["roc_auc"] < decision.champion_metrics["roc_auc"]
    assert aliases(lake) == {"champion": champion, "challenger": worse}
    recorded = decision_tags(lake, decision.model_name, worse)
    assert (recorded["verdict"], recorded["champion_before"]) == ("reject", champion)
    assert "beats_champion" in recorded["reason"]
    with pytest.raises(UnsafePromotionError, match="nothing to roll back to"):
        rollback()  # nothing moved: no previous champion
    assert aliases(lake) == {"champion": champion, "challenger": worse}


def test_days_the_champion_was_fitted_on_are_never_compared_on(pool, lake, feed):
    """As of AFTER's last day, every day the challenger could be judged on (those after its own
    window, promotion_window_days of them) lies in the champion's training window: the champion
    would score its own training rows. No rows to compare on: rejected, recorded, nothing moves."""
    champion = register(lake, pool.after, "champion")
    challenger = register(lake, pool.before, "challenger")

    decision = promote(as_of=AFTER[1])
    assert decision.verdict == "reject" and decision.comparison is None
    assert decision.reason == (
        f"enough_evidence: 0 compared rows: labelled days after the challenger's training window were "
        f"all in @champion v{champion}'s training window"
    )
    assert aliases(lake) == {"champion": champion, "challenger": challenger}
    assert decision_tags(lake, decision.model_name, challenger)["verdict"] == "reject"


def test_a_person_moves_champion_by_hand_with_only_safety_checked(pool, lake):
    champion = register(lake, pool.after, "champion")
    chosen = register(lake, pool.before)  # worse on recent data: a person's call, not the gates'

    decision = promote(challenger_version=chosen, mode="manual", decided_by="cli:alice")
    assert (decision.verdict, decision.reason) == ("promote", "manual by hand")
    assert {check.name for check in decision.checks} == {"signature", "data_gate"}
    assert aliases(lake) == {"champion": chosen, "previous_champion": champion}
    assert decision_tags(lake, decision.model_name, chosen)["decided_by"] == "cli:alice"
    with pytest.raises(UnsafePromotionError, match="already is @champion"):
        promote(challenger_version=chosen, mode="manual")
