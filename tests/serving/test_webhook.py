"""MLflow's registry webhook: a signed call wakes the alias check at once (the endpoint here polls
only every hour), a call that is not MLflow's is refused, and the signature is MLflow's own."""

import json
import time

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.webhooks.delivery import _generate_hmac_signature

from inferloop.core.registry import Registry
from inferloop.serving.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    register_webhook,
    verified,
)
from tests.conftest import free_port
from tests.fixtures.pool import register
from tests.serving.conftest import (
    in_process_endpoint,
    start_endpoint,
    unique_model_name,
    wait_ready,
)

SECRET = "webhook-secret-for-tests"


def signed_headers(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict:
    stamp = str(timestamp or int(time.time()))
    return {
        DELIVERY_HEADER: "d-1",
        TIMESTAMP_HEADER: stamp,
        # MLflow's own signing function: what its server sends
        SIGNATURE_HEADER: _generate_hmac_signature(secret, "d-1", stamp, body.decode()),
        "Content-Type": "application/json",
    }


def test_a_call_signed_by_mlflow_verifies_and_any_other_does_not():
    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": {}}).encode()
    assert verified(SECRET, signed_headers(body), body) is None
    assert "does not match" in verified(SECRET, signed_headers(body, secret="another"), body)
    assert "does not match" in verified(SECRET, signed_headers(body), body + b" ")
    assert "away" in verified(SECRET, signed_headers(body, timestamp=int(time.time()) - 3_600), body)
    assert "away" in verified(SECRET, {}, body)


@pytest.mark.slow
def test_an_alias_move_is_followed_at_once_through_the_webhook(pool, mlflow_server, tmp_path):
    name = unique_model_name("webhook")
    first = register(mlflow_server, pool.before, "champion", model_name=name)
    second = register(mlflow_server, pool.after, model_name=name)
    port = free_port()
    endpoint = start_endpoint(
        tmp_path,
        mlflow_server,
        name,
        {
            "INFERLOOP_SERVE_POLL_SECONDS": "3600",
            "INFERLOOP_SERVE_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/mlflow",
            "INFERLOOP_SERVE_WEBHOOK_SECRET": SECRET,
        },
        port=port,
    )
    try:
        wait_ready(endpoint, first)
        assert f"MLflow calls http://127.0.0.1:{port}/hooks/mlflow" in endpoint.log.read_text()
        unsigned = httpx.post(
            f"{endpoint.url}/hooks/mlflow", json={"entity": "model_version_alias"}, timeout=30
        )
        assert unsigned.status_code == 401 and "Not a call of MLflow's webhook" in unsigned.json()["error"]

        time.sleep(1.5)  # past the MLflow server's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1)
        MlflowClient(mlflow_server).set_registered_model_alias(name, "champion", second)
        wait_ready(endpoint, second, timeout=30)  # the next poll is an hour away
        assert SECRET not in endpoint.log.read_text()
    finally:
        endpoint.stop()


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_the_webhook_is_off(secret, mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", unique_model_name("no-webhook"))
    knobs = {} if secret is None else {"SERVE_WEBHOOK_SECRET": secret}
    body = b'{"entity": "model_version_alias"}'
    with in_process_endpoint(tmp_path, monkeypatch, loaded=False, **knobs) as client:
        # signed with the empty key, as anyone could: still off
        answer = client.post("/hooks/mlflow", content=body, headers=signed_headers(body, secret=""))
    assert answer.status_code == 404 and "INFERLOOP_SERVE_WEBHOOK_SECRET" in answer.json()["error"]


def test_a_restart_at_another_address_points_the_one_webhook_there(mlflow_server):
    registry = Registry(mlflow_server, unique_model_name("webhook-moved"))
    name = f"inferloop-serve-{registry.model_name}"
    for port in (8080, 8081):
        said = register_webhook(registry, f"http://127.0.0.1:{port}/hooks/mlflow", SECRET)
        assert (
            said
            == f"MLflow calls http://127.0.0.1:{port}/hooks/mlflow when an alias or a version tag changes"
        )
    ours = [hook for hook in MlflowClient(mlflow_server).list_webhooks(max_results=1000) if hook.name == name]
    assert [hook.url for hook in ours] == ["http://127.0.0.1:8081/hooks/mlflow"]  # updated, not a second one


def test_a_url_mlflow_refuses_leaves_the_endpoint_polling_and_says_why(mlflow_server):
    registry = Registry(mlflow_server, unique_model_name("webhook-refused"))
    said = register_webhook(registry, "ftp://127.0.0.1/hooks/mlflow", SECRET)  # not a scheme MLflow calls
    assert said.startswith("MLflow's webhook is not used (") and said.endswith("the endpoint polls @champion")
    assert "ftp" in said and SECRET not in said
