"""Promotion, rollback, approval and their failure modes against a real MLflow server."""

import threading
import time
import uuid
from datetime import date

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig

pytestmark = pytest.mark.slow
BEFORE = (date(2026, 1, 1), date(2026, 1, 7))  # concept changes on 2026-01-08
AFTER = (date(2026, 1, 10), date(2026, 1, 16))
POST_CHANGE = (date(2026, 1, 17), date(2026, 1, 18))


@pytest.fixture(scope="module")
def drift_lake(tmp_path_factory) -> str:
    from inferloop.core.storage import Storage

    uri = (tmp_path_factory.mktemp("promotion") / "lake").as_uri()
    spec = load_settings().dataset
    write_synthetic_feed.fn(
        Storage(uri),
        spec,
        GeneratorConfig(scenario="concept_drift", days=18, rows_per_day=2_000, change_day=7),
    )
    return uri


@pytest.fixture
def registry(prefect_harness, mlflow_server, drift_lake, monkeypatch):
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", drift_lake)
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"promo-{uuid.uuid4().hex[:8]}")
    settings = load_settings()
    return settings, MlflowClient(mlflow_server)


def aliases(client, name) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def tags(client, name, version) -> dict[str, str]:
    return client.get_model_version(name, version).tags


def test_newer_model_is_promoted_on_post_change_data_and_rollback_restores(registry):
    from inferloop.flows.batch_inference import batch_inference
    from inferloop.flows.promote import promote, rollback
    from inferloop.flows.train import train

    _, client = registry
    old = train(*BEFORE)
    assert old.alias == "champion"
    assert tags(client, old.name, old.version)["inferloop.decision.mode"] == "bootstrap"
    new = train(*AFTER)
    assert new.alias == "challenger"
    run = client.get_run(new.run_id)
    artifacts = {a.path for a in client.list_artifacts(new.run_id, "evaluation")}
    assert {
        "evaluation/roc_curve.png",
        "evaluation/confusion_matrix.png",
        "evaluation/calibration.png",
    } <= artifacts
    assert run.data.tags["inferloop.data_gate"] == "accepted"

    decision = promote(start=POST_CHANGE[0], end=POST_CHANGE[1])
    assert decision.verdict == "promote"
    assert decision.challenger_metrics["roc_auc"] > decision.champion_metrics["roc_auc"] + 0.2
    assert aliases(client, new.name) == {"champion": new.version, "previous_champion": old.version}
    recorded = tags(client, new.name, new.version)
    assert recorded["inferloop.decision.verdict"] == "promote"
    assert recorded["inferloop.decision.champion_before"] == old.version
    assert "roc_auc" in recorded["inferloop.decision.challenger_metrics"]

    restored = rollback(decided_by="test")
    assert restored.verdict == "rollback"
    assert aliases(client, new.name)["champion"] == old.version
    manifests = batch_inference(partition_date=POST_CHANGE[1])
    assert manifests[0].model_version == old.version


def test_older_model_is_refused_on_post_change_data(registry):
    from inferloop.flows.promote import promote
    from inferloop.flows.train import train

    _, client = registry
    new = train(*AFTER)
    old = train(*BEFORE)
    decision = promote(start=POST_CHANGE[0], end=POST_CHANGE[1])
    assert decision.verdict == "reject" and "beats_champion" in decision.reason
    assert aliases(client, new.name) == {"champion": new.version, "challenger": old.version}
    assert tags(client, old.name, old.version)["inferloop.decision.verdict"] == "reject"


def test_two_promotions_at_once_leave_one_consistent_champion(registry):
    from inferloop.flows.promote import promote
    from inferloop.flows.train import train

    _, client = registry
    champion = train(*BEFORE)
    first, second = train(*AFTER), train(date(2026, 1, 11), date(2026, 1, 16))
    results = {}

    def run(version):
        results[version] = promote(challenger_version=version, start=POST_CHANGE[0], end=POST_CHANGE[1])

    threads = [threading.Thread(target=run, args=(v.version,)) for v in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whatever the interleaving: one champion, consistent with the decision that put it there.
    final = aliases(client, champion.name)
    promoted = [d for d in results.values() if d.verdict == "promote"]
    last = next(d for d in promoted if d.challenger_version == final["champion"])
    assert final["previous_champion"] == last.champion_version
    for decision in results.values():
        if decision.verdict == "reject":  # applied on a stale champion, or lost on the metrics
            assert "moved to" in decision.reason or "beats_champion" in decision.reason
    for version in (first.version, second.version):
        assert "inferloop.decision.verdict" in tags(client, champion.name, version)


def test_approval_mode_moves_only_when_approved(registry):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.flow_runs import resume_flow_run

    from inferloop.flows.promote import promote
    from inferloop.flows.train import train

    _, client = registry
    old = train(*BEFORE)
    new = train(*AFTER)

    def paused_promote_run():
        with get_client(sync_client=True) as prefect:
            for _ in range(120):
                runs = prefect.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"]))
                    )
                )
                if runs:
                    return runs[0].id
                time.sleep(0.5)
        raise AssertionError("the promote flow never paused for approval")

    def approve_promote(result: dict) -> None:
        result["d"] = promote(start=POST_CHANGE[0], end=POST_CHANGE[1], mode="approve")

    for approve, expected_champion in ((False, old.version), (True, new.version)):
        result = {}
        thread = threading.Thread(target=approve_promote, args=(result,))
        thread.start()
        resume_flow_run(
            paused_promote_run(),
            run_input={
                "approve": approve,
                "approver": "alice",
                "comment": "looks fine" if approve else "not yet",
            },
        )
        thread.join(timeout=120)
        decision = result["d"]
        assert aliases(client, old.name)["champion"] == expected_champion
        assert "alice" in decision.decided_by
        assert tags(client, new.name, new.version)["inferloop.decision.decided_by"] == decision.decided_by


def test_unsafe_or_impossible_moves_are_clear_errors(registry, monkeypatch):
    from inferloop.core.registry import RegistryError
    from inferloop.flows.promote import promote, rollback
    from inferloop.flows.train import train
    from inferloop.tasks.promotion.decision import UnsafePromotionError

    _, client = registry
    with pytest.raises(RegistryError, match="has the alias @challenger"):
        promote()
    champion = train(*BEFORE)
    with pytest.raises(UnsafePromotionError, match="has no version 99"):
        promote(challenger_version="99", mode="manual")
    with pytest.raises(UnsafePromotionError, match="nothing to roll back to"):
        rollback()
    with pytest.raises(UnsafePromotionError, match="already is @champion"):
        promote(challenger_version=champion.version, mode="manual")
    client.delete_model_version(champion.name, champion.version)  # a version deleted under us
    with pytest.raises(RegistryError, match="has the alias @challenger"):
        promote()

    from tests.conftest import free_port

    monkeypatch.setenv("INFERLOOP_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="unreachable"):
        promote(challenger_version="1", mode="manual")
