"""The core registry on real MLflow stores: one client per tracking URI, no process-wide tracking
URI needed to read, errors told apart by type, code or status with their cause kept, and every
MLflow call of the code base behind this one module."""

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.tracking._tracking_service import utils as tracking_utils
from sklearn.linear_model import LogisticRegression

from inferloop.core.registry import (
    THRESHOLD_TAG,
    ModelNotFound,
    ModelRecord,
    ModelVersionRef,
    Registry,
    RegistryError,
    RegistryPermissionDenied,
    RegistryUnavailable,
    TrainingData,
    client_for,
    translated_errors,
)
from inferloop.core.settings import REPO_ROOT
from tests.conftest import free_port

MODEL = "core-registry-model"


@pytest.fixture
def fail_fast(monkeypatch):
    """No retries: a refused connection or a 5xx answer fails at once (MLflow reads this per call)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A SQLite store with one logged model version (alias @challenger); MLflow's process-wide
    tracking URI, which logging a model sets, is restored afterwards."""
    root = tmp_path_factory.mktemp("registry")
    registry = Registry(f"sqlite:///{root / 'mlflow.db'}", MODEL, root / "mlartifacts")
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "age": [1.0, 0, 1, 0, 1, 0]})
    target = pd.Series([0, 0, 0, 1, 1, 1])
    model = LogisticRegression().fit(frame, target)
    record = ModelRecord(
        model=model,
        input_example=frame.head(2),
        training_data=TrainingData(frame.assign(label=target), "file:///feed", "label", "feed", "d" * 32),
        params={"window_end": "2026-01-07"},
        metrics={"holdout_roc_auc": 0.75},
        tags={"inferloop.data_gate": "accepted"},
        version_tags={THRESHOLD_TAG: "0.25"},
        json_artifacts={"reference_profile.json": {"amount": [1, 6]}},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
        patch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri)  # restored afterwards
        ref = registry.log_model_version("core-tests", "train", record, alias="challenger")
    return registry, ref, frame


def test_a_logged_version_is_found_by_its_alias_and_read_back_without_the_process_wide_uri(
    logged, tmp_path, monkeypatch
):
    registry, ref, frame = logged
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setattr(tracking_utils, "_tracking_uri", elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)

    assert registry.find_alias("challenger") == ref
    assert ref.version == "1"
    # The version's decision threshold comes with it, wherever the version is resolved.
    assert ref.threshold(0.5) == registry.get_version("1").threshold(0.5) == 0.25
    run = registry.run(ref.run_id)
    assert run.params["window_end"] == "2026-01-07"
    assert run.metrics["holdout_roc_auc"] == 0.75
    assert run.tags["inferloop.data_gate"] == "accepted"
    assert registry.load_run_dict(ref.run_id, "reference_profile.json") == {"amount": [1, 6]}
    assert [c["name"] for c in registry.input_schema(ref)] == ["amount", "age"]
    assert registry.load_model(ref).predict_proba(frame).shape == (6, 2)
    assert tracking_utils._tracking_uri == elsewhere  # reading changed nothing process-wide


def test_models_load_one_at_a_time_in_a_process(logged, monkeypatch):
    """Concurrent loads from threads take turns (CPython 3.11's `ast`, which skops rebuilds a
    model through, is not safe across threads): the real loads, timed by a wrapper."""
    import mlflow.sklearn

    registry, ref, frame = logged
    real_load, inside, most = mlflow.sklearn.load_model, [0], [0]

    def counted_load(path):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.2)  # a slow load: another thread would get in now
            return real_load(path)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(mlflow.sklearn, "load_model", counted_load)
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(registry.load_model(ref))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 3 and all(m.predict_proba(frame).shape == (6, 2) for m in loaded)
    assert most[0] == 1


def test_a_version_registered_without_a_threshold_uses_the_settings_one():
    assert ModelVersionRef("m", "1", "run").threshold(0.5) == 0.5
    assert ModelVersionRef("m", "1", "run", decision_threshold=0.125).threshold(0.5) == 0.125


def test_aliases_move_and_versions_carry_tags(logged):
    registry, ref, _ = logged
    registry.set_alias("champion", ref.version)
    registry.tag_version(ref.version, {"inferloop.decision.verdict": "promote"})
    assert registry.find_alias("champion").version == ref.version
    version = registry.client.get_model_version(MODEL, ref.version)
    assert version.tags["inferloop.decision.verdict"] == "promote"
    registry.delete_alias("champion")
    assert registry.find_alias("champion") is None


def test_an_unknown_model_or_alias_is_none_and_an_unknown_version_is_not_found(logged):
    registry, _, _ = logged
    assert registry.find_alias("never-set") is None
    unknown_model = Registry(registry.tracking_uri, "never-registered")
    assert unknown_model.find_alias("champion") is None
    with pytest.raises(ModelNotFound, match=f"read {MODEL} v99") as raised:
        registry.get_version("99")
    assert isinstance(raised.value.__cause__, MlflowException)
    with pytest.raises(ModelNotFound) as raised:
        registry.run("0123456789abcdef0123456789abcdef")
    assert raised.value.__cause__ is not None


def test_one_client_per_tracking_uri(logged, tmp_path):
    registry, _, _ = logged
    assert client_for(registry.tracking_uri) is client_for(registry.tracking_uri)
    assert Registry(registry.tracking_uri, "another-model").client is registry.client
    assert client_for(f"sqlite:///{tmp_path / 'other.db'}") is not registry.client


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.find_alias("champion"),
        lambda r: r.get_version("1"),
        lambda r: r.run("0123456789abcdef0123456789abcdef"),
        lambda r: r.ensure_experiment("inferloop-training"),
        lambda r: r.set_alias("champion", "1"),
    ],
    ids=["find_alias", "get_version", "run", "ensure_experiment", "set_alias"],
)
def test_a_server_that_is_down_is_unavailable_with_the_cause_kept(call, fail_fast):
    registry = Registry(f"http://127.0.0.1:{free_port()}", MODEL)  # nothing listens there
    with pytest.raises(RegistryUnavailable, match=r"unreachable: start it with `make up`") as raised:
        call(registry)
    assert isinstance(raised.value.__cause__, MlflowException)


class AlwaysUnavailable(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_server_answering_5xx_after_retries_is_unavailable(fail_fast):
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysUnavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry = Registry(f"http://127.0.0.1:{server.server_address[1]}", MODEL)
        with pytest.raises(RegistryUnavailable) as raised:
            registry.find_alias("champion")
    finally:
        server.shutdown()
        server.server_close()
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize(
    ("code", "user", "kind", "says"),
    [
        ("PERMISSION_DENIED", "alice", RegistryPermissionDenied, "ask an MLflow admin to grant alice"),
        ("UNAUTHENTICATED", "alice", RegistryPermissionDenied, "check MLFLOW_TRACKING_PASSWORD"),
        ("UNAUTHENTICATED", None, RegistryPermissionDenied, "set MLFLOW_TRACKING_USERNAME"),
        ("RESOURCE_DOES_NOT_EXIST", None, ModelNotFound, "could not read m v3: not found"),
        ("TEMPORARILY_UNAVAILABLE", None, RegistryUnavailable, "unreachable"),
        ("INTERNAL_ERROR", None, RegistryError, "failed to read m v3: boom"),
    ],
)
def test_the_translator_tells_errors_apart_by_their_code(code, user, kind, says, monkeypatch):
    """The same message text for every code: only the error code tells them apart."""
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    if user:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    error = MlflowException("boom", error_code=ErrorCode.Value(code))
    assert error.error_code == code
    with pytest.raises(RegistryError) as raised, translated_errors("http://mlflow:5000", "read m v3"):
        raise error
    assert type(raised.value) is kind
    assert says in str(raised.value)
    assert raised.value.__cause__ is error


def test_errors_that_are_not_the_registry_s_pass_through_unchanged():
    with pytest.raises(KeyError), translated_errors("http://mlflow:5000", "read m v3"):
        raise KeyError("a bug, not the registry")


CONFINED = {
    "set_tracking_uri": r"set_tracking_uri",
    "MlflowClient(": r"MlflowClient\(",
    "import mlflow": r"^\s*(import mlflow|from mlflow[.\w]* import)\b",
}


def test_every_mlflow_call_goes_through_the_core_registry():
    """No exceptions: everything inferloop asks MLflow (fluent logging of a model included) is in
    inferloop/core/registry.py."""
    module = REPO_ROOT / "inferloop" / "core" / "registry.py"
    assert all(re.search(p, module.read_text(), re.M) for p in CONFINED.values())  # the scan sees them
    found = sorted(
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for top in ("inferloop", "tasks", "flows")
        for path in (REPO_ROOT / top).rglob("*.py")
        if path != module
        for name, pattern in CONFINED.items()
        if re.search(pattern, path.read_text(), re.M)
    )
    assert found == []
