"""Promotion, rollback, approval and their failure modes against a real MLflow server, on copies
of the session's `pool` models (tests/fixtures/pool.py: `before` fitted on the old fraud pattern,
`after` on the new one), each test under its own registered model name."""

import threading
import time
import uuid

import pytest
from mlflow import MlflowClient

from inferloop.core.settings import load_settings
from tests.fixtures.pool import AFTER_BOTH, FEED, register, write_feed

pytestmark = pytest.mark.slow
POST_CHANGE = AFTER_BOTH  # labelled days of the new pattern neither model was fitted on


@pytest.fixture(scope="module")
def drift_lake(tmp_path_factory) -> str:
    """The pool's feed (its concept changes halfway), once for the module: tests only read it and
    write predictions under their own model name."""
    uri = (tmp_path_factory.mktemp("promotion") / "lake").as_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERLOOP_STORAGE_URI", uri)
        assert write_feed(FEED)[-1] == POST_CHANGE[1]
    return uri


@pytest.fixture
def registry(pool, mlflow_server, drift_lake, monkeypatch):
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", drift_lake)
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"promo-{uuid.uuid4().hex[:8]}")
    # GX's own verdict once per file schema, as in tests/flows (row checks still cover every row):
    # tests/tasks/gate covers GX on every partition.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    settings = load_settings()
    return settings, MlflowClient(mlflow_server)


def copy(pool_model, *aliases: str) -> str:
    """A copy of a pool model as the next version of this test's model (a registry call)."""
    return register(load_settings().registry.tracking_uri, pool_model, *aliases)


def aliases(client, name) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def tags(client, name, version) -> dict[str, str]:
    return client.get_model_version(name, version).tags


def test_newer_model_is_promoted_on_post_change_data_and_rollback_restores(pool, registry):
    from inferloop.flows.batch_inference import batch_inference
    from inferloop.flows.promote import promote, rollback

    settings, client = registry
    name = settings.registry.model_name
    # As the train flow registered them: the first version @champion by a bootstrap decision, the
    # next one @challenger with its evaluation plots and the gate's verdict on its training data.
    assert pool.before.alias == "champion"
    assert tags(client, pool.before.name, pool.before.version)["inferloop.decision.mode"] == "bootstrap"
    assert pool.after.alias == "challenger"
    artifacts = {a.path for a in client.list_artifacts(pool.after.run_id, "evaluation")}
    assert {
        "evaluation/roc_curve.png",
        "evaluation/confusion_matrix.png",
        "evaluation/calibration.png",
    } <= artifacts
    assert client.get_run(pool.after.run_id).data.tags["inferloop.data_gate"] == "accepted"

    old, new = copy(pool.before, "champion"), copy(pool.after, "challenger")
    decision = promote(start=POST_CHANGE[0], end=POST_CHANGE[1])
    assert decision.verdict == "promote"
    assert decision.challenger_metrics["roc_auc"] > decision.champion_metrics["roc_auc"] + 0.2
    assert aliases(client, name) == {"champion": new, "previous_champion": old}
    recorded = tags(client, name, new)
    assert recorded["inferloop.decision.verdict"] == "promote"
    assert recorded["inferloop.decision.champion_before"] == old
    assert "roc_auc" in recorded["inferloop.decision.challenger_metrics"]

    restored = rollback(decided_by="test")
    assert restored.verdict == "rollback"
    assert aliases(client, name)["champion"] == old
    manifests = batch_inference(partition_date=POST_CHANGE[1])
    assert manifests[0].model_version == old


def test_older_model_is_refused_on_post_change_data(pool, registry):
    from inferloop.flows.promote import promote

    settings, client = registry
    name = settings.registry.model_name
    new, old = copy(pool.after, "champion"), copy(pool.before, "challenger")
    decision = promote(start=POST_CHANGE[0], end=POST_CHANGE[1])
    assert decision.verdict == "reject" and "beats_champion" in decision.reason
    assert aliases(client, name) == {"champion": new, "challenger": old}
    assert tags(client, name, old)["inferloop.decision.verdict"] == "reject"


def test_two_promotions_at_once_leave_one_consistent_champion(pool, registry):
    from inferloop.flows.promote import promote

    settings, client = registry
    name = settings.registry.model_name
    copy(pool.before, "champion")
    # Two versions that both beat the champion, promoted at the same time.
    first, second = copy(pool.after), copy(pool.after)
    results = {}

    def run(version):
        results[version] = promote(challenger_version=version, start=POST_CHANGE[0], end=POST_CHANGE[1])

    threads = [threading.Thread(target=run, args=(v,)) for v in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whatever the interleaving: one champion, consistent with the decision that put it there.
    final = aliases(client, name)
    promoted = [d for d in results.values() if d.verdict == "promote"]
    last = next(d for d in promoted if d.challenger_version == final["champion"])
    assert final["previous_champion"] == last.champion_version
    for decision in results.values():
        if decision.verdict == "reject":  # applied on a stale champion, or lost on the metrics
            assert "moved to" in decision.reason or "beats_champion" in decision.reason
    for version in (first, second):
        assert "inferloop.decision.verdict" in tags(client, name, version)


def test_approval_mode_moves_only_when_approved(pool, registry):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.flow_runs import resume_flow_run

    from inferloop.flows.promote import promote

    settings, client = registry
    name = settings.registry.model_name
    old, new = copy(pool.before, "champion"), copy(pool.after, "challenger")

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

    for approve, expected_champion in ((False, old), (True, new)):
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
        assert aliases(client, name)["champion"] == expected_champion
        assert "alice" in decision.decided_by
        assert tags(client, name, new)["inferloop.decision.decided_by"] == decision.decided_by


def test_unsafe_or_impossible_moves_are_clear_errors(pool, registry, monkeypatch):
    from inferloop.core.registry import RegistryError
    from inferloop.flows.promote import promote, rollback
    from inferloop.tasks.promotion.decision import UnsafePromotionError

    settings, client = registry
    with pytest.raises(RegistryError, match="has the alias @challenger"):
        promote()
    champion = copy(pool.before, "champion")
    with pytest.raises(UnsafePromotionError, match="has no version 99"):
        promote(challenger_version="99", mode="manual")
    with pytest.raises(UnsafePromotionError, match="nothing to roll back to"):
        rollback()
    with pytest.raises(UnsafePromotionError, match="already is @champion"):
        promote(challenger_version=champion, mode="manual")
    client.delete_model_version(settings.registry.model_name, champion)  # a version deleted under us
    with pytest.raises(RegistryError, match="has the alias @challenger"):
        promote()

    from tests.conftest import free_port

    monkeypatch.setenv("INFERLOOP_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="unreachable"):
        promote(challenger_version="1", mode="manual")
