"""The degraded-model policy: while the monitor's confirmed breach of @champion is open (the
version's breach tag, written by the monitor's own function), `serve` flags every response,
`fallback` scores with @previous_champion and `reject` answers 503 with the reason; when the
breach closes the endpoint serves the champion normally again. One endpoint per policy, on a
real MLflow server."""

import pytest
from mlflow import MlflowClient

from inferloop.core.registry import Registry
from inferloop.core.settings import RegistrySettings
from inferloop.tasks.model.registry import record_breach_state
from tests.fixtures.pool import register
from tests.serving.conftest import feed_records, start_endpoint, unique_model_name, wait_ready, wait_until

pytestmark = pytest.mark.slow
REASON = "performance: accuracy 0.61 fell 0.12 below validation"


@pytest.fixture(scope="module", params=["serve", "fallback", "reject"])
def endpoint(request, pool, mlflow_server, tmp_path_factory):
    name = unique_model_name(f"degraded-{request.param}")
    previous = register(mlflow_server, pool.before, "previous_champion", model_name=name)
    champion = register(mlflow_server, pool.after, "champion", model_name=name)
    served = start_endpoint(
        tmp_path_factory.mktemp(request.param),
        mlflow_server,
        name,
        {"INFERLOOP_SERVE_DEGRADED_POLICY": request.param},
    )
    served.policy, served.previous, served.champion = request.param, previous, champion
    served.registry = RegistrySettings(tracking_uri=mlflow_server, model_name=name)
    wait_ready(served, champion)
    yield served
    served.stop()


def set_breach(endpoint, breached: bool) -> str:
    champion = Registry(endpoint.registry.tracking_uri, endpoint.model_name).find_alias("champion")
    return record_breach_state(endpoint.registry, champion, "2026-03-14", breached, [REASON])


def degraded_metric(endpoint) -> str:
    metrics = endpoint.get("/metrics", key="admin").text
    return next(line for line in metrics.splitlines() if line.startswith("inferloop_serve_degraded "))


def test_the_policy_applies_while_the_breach_is_open_and_ends_when_it_closes(endpoint):
    rows = {"dataframe_records": feed_records(4, first=10)}
    normal = endpoint.post(rows)
    assert normal.status_code == 200 and "degraded" not in normal.json()
    assert normal.json()["model_version"] == endpoint.champion

    assert set_breach(endpoint, True) == "opened"
    assert set_breach(endpoint, True) == ""  # still open: recorded once
    ready = wait_until(
        lambda: (body := endpoint.get("/health/ready").json())["degraded"] and body, 60, what="policy applied"
    )
    assert ready["ready"] is True and REASON in ready["degraded"]
    assert degraded_metric(endpoint) == "inferloop_serve_degraded 1.0"

    answer = endpoint.post(rows)
    if endpoint.policy == "reject":
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        error = answer.json()["error"]
        assert REASON in error and "INFERLOOP_SERVE_DEGRADED_POLICY=reject" in error
    else:
        body = answer.json()
        assert answer.status_code == 200 and REASON in body["degraded"]
        assert body["rows_in"] == body["rows_scored"] + body["rows_rejected"] == 4
        expected = endpoint.previous if endpoint.policy == "fallback" else endpoint.champion
        assert body["model_version"] == answer.headers["X-Model-Version"] == expected
        assert f"policy {endpoint.policy}" in body["degraded"]
        if endpoint.policy == "fallback":
            assert "@previous_champion scores" in body["degraded"]
            assert [p["score"] for p in body["predictions"]] != [
                p["score"] for p in normal.json()["predictions"]
            ]

    assert set_breach(endpoint, False) == "closed"
    wait_until(lambda: endpoint.get("/health/ready").json()["degraded"] is None, 60, what="breach closed")
    again = endpoint.post(rows)
    assert again.status_code == 200 and "degraded" not in again.json()
    assert again.json()["model_version"] == endpoint.champion
    assert again.json()["predictions"] == normal.json()["predictions"]
    assert degraded_metric(endpoint) == "inferloop_serve_degraded 0.0"
    log = endpoint.log.read_text()
    assert REASON in log and "breach closed" in log  # each change of state, in the server's log


def test_a_new_champion_starts_without_the_breach(endpoint, mlflow_server, pool):
    set_breach(endpoint, True)
    wait_until(lambda: endpoint.get("/health/ready").json()["degraded"], 60, what="policy applied")
    retrained = register(mlflow_server, pool.after, model_name=endpoint.model_name)
    MlflowClient(mlflow_server).set_registered_model_alias(endpoint.model_name, "champion", retrained)
    ready = wait_ready(endpoint, retrained, timeout=60)
    assert ready["degraded"] is None
    answer = endpoint.post({"dataframe_records": feed_records(2, first=30)})
    assert answer.status_code == 200 and answer.json()["model_version"] == retrained
    assert "degraded" not in answer.json()
