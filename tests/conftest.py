"""Session fixtures: real Prefect (test harness), a real MLflow server on SQLite and a real S3
API (moto's server mode) on loopback ports, each started once and stopped at the end."""

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# No timed assertions: a property-based example may take seconds on a shared, loaded machine.
hypothesis_settings.register_profile("inferloop", deadline=None)
hypothesis_settings.load_profile("inferloop")

# Before inferloop (and so Prefect) is imported: all state goes to a throwaway directory.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="inferloop-tests-"))
os.environ["INFERLOOP_STATE_DIR"] = str(SESSION_DIR / "state")
# The user's settings go; the tests' own options (INFERLOOP_TEST_*: the opt-in real data) stay.
for name in list(os.environ):
    if name.startswith("INFERLOOP_") and not name.startswith(("INFERLOOP_STATE_DIR", "INFERLOOP_TEST_")):
        del os.environ[name]
os.environ.pop("PREFECT_API_URL", None)
# Compiling every trained model (~2-6 s each) is tested in tests/tasks/model/test_optimised*.py,
# which turn it on; the rest of the suite registers models without it.
os.environ["INFERLOOP_OPTIMISED_ARTIFACT"] = "false"
os.environ.update(
    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
)

from inferloop.core.offline import prepare_process  # noqa: E402

prepare_process()  # as every entry point does

BIN = Path(sys.executable).parent

from prefect.logging.configuration import setup_logging  # noqa: E402  (after inferloop's defaults)

# Prefect's console log handler keeps the stream it first writes to. Set up here, that is the
# real stderr, not the stream of the first CliRunner.invoke, which is closed after it returns.
setup_logging()


# Below Linux's ephemeral range (32768-60999 by default), which bind(0) and every outgoing
# connection's local port are drawn from: a port picked here cannot be taken by another test's
# connection in the tens of seconds before its server binds it (the stack starts serve last).
SERVER_PORTS = range(20_000, 32_000)
_ports = random.SystemRandom()  # not the `random` module: tests seed it, and xdist workers alike


def free_port() -> int:
    """A port nobody listens on, for a server to bind later."""
    for _ in range(100):
        port = _ports.choice(SERVER_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {SERVER_PORTS} after 100 tries")


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited early; log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {timeout} s; log:\n{log.read_text()[-3000:]}")


def start_server(
    command: list[str], health_url: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    wait_for(health_url, process, log)
    return process


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def mlflow_server() -> str:
    """A real MLflow tracking server + registry (SQLite backend, proxied artifacts)."""
    port = free_port()
    root = SESSION_DIR / "mlflow-server"
    root.mkdir()
    process = start_server(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        f"http://127.0.0.1:{port}/health",
        root / "server.log",
        # MLflow's job runner (8 more processes) serves features inferloop does not use; off, the
        # server is healthy in less than half the time.
        # Webhooks to the endpoints the tests start on loopback over plain HTTP (MLflow allows
        # only public https URLs by default), seen within a second of their registration (the
        # server caches the webhook list for 60 s by default).
        env={
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        },
    )
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A real S3 API on loopback (moto's server mode)."""
    port = free_port()
    process = start_server(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}/moto-api/",
        SESSION_DIR / "moto.log",
    )
    yield f"http://127.0.0.1:{port}"
    stop_server(process)


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A fresh, empty bucket for one test."""
    import uuid

    import boto3

    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Per-test lake and MLflow store: tests never see each other's models or partitions."""
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


@pytest.fixture
def settings(workdir):
    from inferloop.core.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def pool(prefect_harness, mlflow_server, tmp_path_factory):
    """`before` and `after` (tests/fixtures/pool.py), trained once per session by the train flow
    on the session's MLflow server; tests register copies of them, never train them again."""
    from tests.fixtures.pool import train_pool

    return train_pool(mlflow_server, tmp_path_factory.mktemp("pool"))


@pytest.fixture
def champion(pool, mlflow_server, workdir, monkeypatch) -> list:
    """A copy of the pool's `before` as @champion of this test's own model on the session's
    MLflow server, and the pool's feed written into the configured lake; returns the 3 days after
    the champion's window, left to score. Point INFERLOOP_STORAGE_URI at another lake before
    requesting it to use that lake."""
    import uuid

    from tests.fixtures.pool import TO_SCORE, register, write_feed

    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"champion-{uuid.uuid4().hex[:8]}")
    # GX's own verdict once per file schema, as in tests/flows (row checks still cover every row):
    # its users test where and how scoring runs; tests/tasks/gate covers GX on every partition.
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    write_feed()
    register(mlflow_server, pool.before, "champion")
    return TO_SCORE
