"""A promotion judged on the rows that followed it: the champion's version records the verdict,
a clear failure is rolled back, and while it is recent a challenger must be clearly better.
Real MLflow server, real lake, the session's pool models (tests/fixtures/pool.py)."""

import json
import uuid

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from tests.fixtures.pool import AFTER_BOTH, ROWS_PER_DAY, register, write_feed

pytestmark = pytest.mark.slow


@pytest.fixture
def promoted_the_wrong_model(pool, mlflow_server, workdir, monkeypatch):
    """`after` (fitted on the new pattern) was champion; an automatic promotion replaced it by
    `before` (the old pattern), which then scored the first post-change day nobody was fitted on."""
    from inferloop.flows.batch_inference import batch_inference
    from inferloop.tasks.promotion.decision import PromotionDecision
    from inferloop.tasks.promotion.record import record_decision

    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"hindsight-{uuid.uuid4().hex[:8]}")
    # GX's own verdict once per file schema, as in tests/flows (row checks still cover every row):
    # tests/tasks/gate covers GX on every partition.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    write_feed()
    settings = load_settings()
    good = register(mlflow_server, pool.after, "champion")
    bad = register(mlflow_server, pool.before)
    promotion = PromotionDecision(
        settings.registry.model_name, bad, good, {}, None, [], "promote", "passed every gate", "auto", "test"
    )
    record_decision(settings.registry, promotion)
    batch_inference(partition_date=AFTER_BOTH[0])
    return settings, good, bad


def test_a_promotion_that_did_worse_in_hindsight_is_rolled_back_and_raises_the_bar(
    promoted_the_wrong_model, pool, mlflow_server
):
    from inferloop.flows.monitor import monitor
    from inferloop.flows.promote import promote

    settings, good, bad = promoted_the_wrong_model
    client, name = MlflowClient(mlflow_server), settings.registry.model_name

    decision = monitor(
        day=AFTER_BOTH[1], chart=False, overrides={"hindsight_action": "rollback"}
    )  # labels of AFTER_BOTH[0] have arrived

    verdict = json.loads(client.get_model_version(name, bad).tags["inferloop.hindsight.verdict"])
    assert (verdict["verdict"], verdict["replaced_version"], verdict["rows"]) == ("worse", good, ROWS_PER_DAY)
    assert verdict["comparison"]["upper"] < 0
    assert "rolled back" in decision.reasons[0]
    assert client.get_registered_model(name).aliases["champion"] == good
    rollback = client.get_model_version(name, good).tags
    assert rollback["inferloop.decision.mode"] == "rollback"
    assert rollback["inferloop.decision.decided_by"].startswith("hindsight: promotion of v")

    # The bar is raised (one judged promotion, a failure): an equal challenger (another copy of
    # the champion's model) is refused.
    equal = register(mlflow_server, pool.after, "challenger")
    refused = promote(challenger_version=equal, start=AFTER_BOTH[0], end=AFTER_BOTH[1])
    assert refused.verdict == "reject"
    assert "clearly_better_after_failures" in refused.reason and "did worse in hindsight" in refused.reason


def test_the_verdict_waits_for_enough_rows_and_by_default_is_reported_only(
    promoted_the_wrong_model, mlflow_server, monkeypatch
):
    from inferloop.flows.monitor import monitor

    settings, _, bad = promoted_the_wrong_model
    client, name = MlflowClient(mlflow_server), settings.registry.model_name
    monkeypatch.setenv("INFERLOOP_MIN_PROMOTION_ROWS", str(ROWS_PER_DAY + 1))
    monitor(day=AFTER_BOTH[1], chart=False)
    assert "inferloop.hindsight.verdict" not in client.get_model_version(name, bad).tags  # pending

    monkeypatch.setenv("INFERLOOP_MIN_PROMOTION_ROWS", str(ROWS_PER_DAY))
    monitor(day=AFTER_BOTH[1], chart=False)
    assert (
        json.loads(client.get_model_version(name, bad).tags["inferloop.hindsight.verdict"])["verdict"]
        == "worse"
    )
    assert client.get_registered_model(name).aliases["champion"] == bad  # reported, not rolled back
