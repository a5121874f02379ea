"""The stack as `inferloop up` starts it, on spare ports with its own state directory, once per
module that asks for it; and the API helpers the end-to-end tests poll it with."""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from inferloop.core.owners import pid_alive
from tests.conftest import free_port

BIN = Path(sys.executable).parent
# For a stack under test, as for the rest of the suite (tests/conftest.py, tests/flows/conftest.py):
# GX's own verdict once per file schema (row checks still cover every row) and no compiled model
# per training run, whose own tests turn them on; and a worker that polls for runs every 2 s, not
# 10. The stack's processes inherit them from `inferloop up`.
STACK_TEST_ENV = {
    "INFERLOOP_GX_SCOPE": "schema",
    "INFERLOOP_OPTIMISED_ARTIFACT": "false",
    "PREFECT_WORKER_QUERY_SECONDS": "2",
}


def api(
    url: str,
    payload: dict | None = None,
    attempts: int = 6,
    auth: str | None = None,
    method: str | None = None,
) -> dict | list:
    """One API call, retried on 503 with backoff as Prefect's own client and UI do: the server
    answers 503 while its SQLite database is busy with a running flow's writes.
    `auth` ("user:password") is sent as HTTP basic auth, as Prefect's and MLflow's clients do;
    `method` is POST with a payload, GET without, unless given."""
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode() if payload is not None else None,
        headers=headers,
        method=method or ("POST" if payload is not None else "GET"),
    )
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == attempts - 1:
                raise
            time.sleep(2**attempt)


def wait_for_run(prefect: str, run_id: str, timeout: float = 240, auth: str | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(f"{prefect}/api/flow_runs/{run_id}", auth=auth)
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {run_id} did not finish in {timeout} s")


def wait_for_deployment_run(prefect: str, deployment_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api(f"{prefect}/api/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
        if runs:
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no run of deployment {deployment_id} within {timeout} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`inferloop up` on 9 generated days; yields (ports, cli, state_dir). At the end, checks that
    `inferloop down` stops exactly what `up` started: its five processes."""
    root = tmp_path_factory.mktemp("stack")
    ports = {"PREFECT": free_port(), "MLFLOW": free_port(), "S3": free_port(), "SERVE": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERLOOP_", "PREFECT_"))}
    env.update({f"INFERLOOP_{name}_PORT": str(port) for name, port in ports.items()})
    env["INFERLOOP_STATE_DIR"] = str(root / "state")
    env.update(STACK_TEST_ENV)

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "inferloop"), *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    generated = cli("data", "generate", "--days", "9", "--rows-per-day", "500")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    up = cli("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield ports, cli, root / "state"
    finally:
        # Shown by pytest only when a test fails: the servers' own account of what went wrong.
        for log in sorted((root / "state" / "stack").glob("*.log")):
            print(f"--- {log.name} (last 40 lines)", *log.read_text().splitlines()[-40:], sep="\n")
        pids = [int(p.read_text()) for p in (root / "state" / "stack").glob("*.pid")]
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert "prefect" in down.stdout
    assert len(pids) == 5 and not [pid for pid in pids if pid_alive(pid)], pids


def emit_degraded(prefect: str, model_name: str, day: str) -> None:
    """Raise `inferloop.model.degraded` at the stack's Prefect server, as the monitor does."""
    emitted = subprocess.run(
        [
            sys.executable,
            "-c",
            "from prefect.events import emit_event; emit_event(event='inferloop.model.degraded', "
            f"resource={{'prefect.resource.id': 'inferloop.model.{model_name}'}}, "
            f"payload={{'day': {day!r}}})",
        ],
        env={**os.environ, "PREFECT_API_URL": f"{prefect}/api"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert emitted.returncode == 0, emitted.stderr
