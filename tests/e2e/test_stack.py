"""`inferloop up` starts the stack, registers the deployments and a worker runs them;
`inferloop down` stops exactly what was started. Alternate ports keep it clear of a dev stack."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def api(url: str, payload: dict | None = None, attempts: int = 6) -> dict | list:
    """One API call, retried on 503 with backoff as Prefect's own client and UI do: the server
    answers 503 while its SQLite database is busy with a running flow's writes."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if payload is not None else "GET",
    )
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == attempts - 1:
                raise
            time.sleep(2**attempt)


@pytest.fixture
def stack(tmp_path):
    ports = {"PREFECT": free_port(), "MLFLOW": free_port(), "S3": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERLOOP_", "PREFECT_"))}
    env.update({f"INFERLOOP_{name}_PORT": str(port) for name, port in ports.items()})
    env["INFERLOOP_STATE_DIR"] = str(tmp_path / "state")

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "inferloop"), *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    generated = cli("data", "generate", "--days", "9", "--rows-per-day", "500")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    up = cli("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield ports, cli, tmp_path / "state"
    finally:
        # Shown by pytest only when the test fails: the servers' own account of what went wrong.
        for log in sorted((tmp_path / "state" / "stack").glob("*.log")):
            print(f"--- {log.name} (last 40 lines)", *log.read_text().splitlines()[-40:], sep="\n")
        cli("down")


def wait_for_run(prefect: str, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(f"{prefect}/api/flow_runs/{run_id}")
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


def test_up_deploys_runs_and_down_stops(stack):
    ports, cli, state_dir = stack
    prefect = f"http://127.0.0.1:{ports['PREFECT']}"
    deployments = {d["name"]: d for d in api(f"{prefect}/api/deployments/filter", {})}
    assert {
        "train",
        "batch-inference-daily",
        "promote",
        "rollback",
        "validate",
        "monitor-daily",
        "retrain",
    } <= set(deployments)
    schedules = deployments["batch-inference-daily"]["schedules"]
    assert schedules and schedules[0]["schedule"]["cron"] == "30 2 * * *"

    # Trigger as the UI's Run button does: a flow run of the deployment, picked up by the worker.
    train_run = api(
        f"{prefect}/api/deployments/{deployments['train']['id']}/create_flow_run",
        {"parameters": {"start": "2026-01-01", "end": "2026-01-07"}},
    )
    assert wait_for_run(prefect, train_run["id"])["state"]["type"] == "COMPLETED"
    infer_run = api(
        f"{prefect}/api/deployments/{deployments['batch-inference-daily']['id']}/create_flow_run",
        {"parameters": {"partition_date": "2026-01-08"}},
    )
    assert wait_for_run(prefect, infer_run["id"])["state"]["type"] == "COMPLETED"

    # The automation from prefect.yaml: inferloop.model.degraded starts the retrain deployment
    # with the event's day (no monitoring history yet, so its verdict is "none").
    emitted = subprocess.run(
        [
            sys.executable,
            "-c",
            "from prefect.events import emit_event; emit_event(event='inferloop.model.degraded', "
            "resource={'prefect.resource.id': 'inferloop.model.transactions-classifier'}, "
            "payload={'day': '2026-01-09'})",
        ],
        env={**os.environ, "PREFECT_API_URL": f"{prefect}/api"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert emitted.returncode == 0, emitted.stderr
    retrain_run = wait_for_deployment_run(prefect, deployments["retrain"]["id"])
    assert retrain_run["parameters"] == {"day": "2026-01-09"}
    assert wait_for_run(prefect, retrain_run["id"])["state"]["type"] == "COMPLETED"

    mlflow = f"http://127.0.0.1:{ports['MLFLOW']}"
    model = api(f"{mlflow}/api/2.0/mlflow/registered-models/get?name=transactions-classifier")
    assert {a["alias"] for a in model["registered_model"]["aliases"]} == {"champion"}
    scored = list(
        (state_dir / "lake" / "predictions").glob("model=*/version=1/date=2026-01-08/_manifest.json")
    )
    assert len(scored) == 1

    pids = [int(p.read_text()) for p in (state_dir / "stack").glob("*.pid")]
    assert len(pids) == 4
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert "prefect" in down.stdout
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
