"""`inferloop up` starts the stack, registers the deployments and a worker runs them;
`inferloop down` stops exactly what was started. Alternate ports keep it clear of a dev stack."""

import pytest

from inferloop.core.owners import pid_alive
from tests.e2e.conftest import api, emit_degraded, wait_for_deployment_run, wait_for_run

pytestmark = pytest.mark.slow


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
    emit_degraded(prefect, "transactions-classifier", "2026-01-09")
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
    assert not [pid for pid in pids if pid_alive(pid)]
