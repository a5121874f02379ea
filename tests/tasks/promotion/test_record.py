"""Applying a promotion decision to the registry (tasks/promotion/record.py), on a real MLflow
server: which aliases move, what is written on the version, and a decision on stale evidence."""

import json
import uuid

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from inferloop.tasks.promotion.decision import GateCheck, PromotionDecision
from inferloop.tasks.promotion.record import decision_tags, record_decision


@pytest.fixture
def registry(prefect_harness, mlflow_server, monkeypatch):
    """Three versions of a fresh registered model (no weights: only aliases and tags matter here),
    v1 @champion and v3 @challenger."""
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"record-{uuid.uuid4().hex[:8]}")
    settings = load_settings()
    client = MlflowClient(mlflow_server)
    name = settings.registry.model_name
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(f"record-{uuid.uuid4().hex[:8]}")).info.run_id
    for _ in range(3):
        client.create_model_version(name, f"runs:/{run}/model", run_id=run)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "3")
    return settings, client, name


def decision(name: str, challenger: str, champion: str | None, verdict: str = "promote", mode: str = "auto"):
    return PromotionDecision(
        model_name=name,
        challenger_version=challenger,
        champion_version=champion,
        challenger_metrics={"roc_auc": 0.812345678, "pr_auc": 0.2},
        champion_metrics={"roc_auc": 0.7} if champion else None,
        checks=[GateCheck("beats_champion", verdict != "reject", "ROC AUC 0.8123 vs champion 0.7000")],
        verdict=verdict,
        reason="passed every gate" if verdict != "reject" else "beats_champion: ROC AUC 0.6 vs 0.7",
        mode=mode,
        evaluation="the requested window: 2026-01-15..2026-01-16",
        decided_by="test",
    )


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}


def test_a_promotion_moves_champion_keeps_the_previous_one_and_clears_challenger(registry):
    settings, client, name = registry
    applied = record_decision(settings.registry, decision(name, "3", "1"))
    assert applied.verdict == "promote"
    assert aliases(client, name) == {"champion": "3", "previous_champion": "1"}
    tags = client.get_model_version(name, "3").tags
    assert tags["inferloop.decision.verdict"] == "promote"
    assert tags["inferloop.decision.champion_before"] == "1"


def test_a_decision_on_a_champion_that_moved_since_is_rejected_not_applied(registry):
    settings, client, name = registry
    client.set_registered_model_alias(name, "champion", "2")  # someone moved it meanwhile
    applied = record_decision(settings.registry, decision(name, "3", "1"))
    assert applied.verdict == "reject"
    assert "@champion moved to v2 while this decision was made on v1: rerun promote" in applied.reason
    assert aliases(client, name) == {"champion": "2", "challenger": "3"}
    assert client.get_model_version(name, "3").tags["inferloop.decision.verdict"] == "reject"


def test_a_rejection_moves_nothing_and_is_recorded(registry):
    settings, client, name = registry
    record_decision(settings.registry, decision(name, "3", "1", verdict="reject"))
    assert aliases(client, name) == {"champion": "1", "challenger": "3"}
    assert "beats_champion" in client.get_model_version(name, "3").tags["inferloop.decision.reason"]


def test_a_rollback_to_the_challenger_version_leaves_its_alias(registry):
    settings, client, name = registry
    record_decision(settings.registry, decision(name, "3", "1", verdict="rollback", mode="rollback"))
    assert aliases(client, name) == {"champion": "3", "previous_champion": "1", "challenger": "3"}


def test_the_tags_hold_every_field_of_the_decision_with_rounded_metrics():
    made = decision("m", "3", "1")
    made.reason = "x" * 5_000
    tags = decision_tags(made)
    assert set(tags) == {
        f"inferloop.decision.{key}"
        for key in (
            "verdict",
            "reason",
            "mode",
            "decided_by",
            "decided_at",
            "champion_before",
            "evaluation",
            "failed_checks",
            "challenger_metrics",
            "champion_metrics",
        )
    }
    assert (
        len(tags["inferloop.decision.reason"]) == 4_000
    )  # cut, so that the registry does not refuse a long reason
    assert json.loads(tags["inferloop.decision.challenger_metrics"]) == {"roc_auc": 0.81235, "pr_auc": 0.2}
    assert tags["inferloop.decision.failed_checks"] == ""  # what a second look reads
    assert decision_tags(decision("m", "3", "1", verdict="reject"))["inferloop.decision.failed_checks"] == (
        "beats_champion"
    )
    first = decision_tags(decision("m", "1", None))
    assert first["inferloop.decision.champion_before"] == "none"
    assert "inferloop.decision.champion_metrics" not in first
