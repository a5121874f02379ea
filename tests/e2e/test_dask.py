"""Batch inference on Dask: a local cluster, and a separately started scheduler + workers."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.runtime.runners import configured_task_runner
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from tests.conftest import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture
def trained(prefect_harness, workdir, monkeypatch):
    from inferloop.flows.train import train

    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"dask-{uuid.uuid4().hex[:8]}")
    settings = load_settings()
    days = write_synthetic_feed.fn(
        lake_storage(settings.lake), settings.dataset, GeneratorConfig(days=10, rows_per_day=1_000)
    )
    train(start=days[0], end=days[5])
    return days


@pytest.fixture
def dask_cluster():
    port = free_port()
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = [
        subprocess.Popen(
            [str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    yield f"tcp://127.0.0.1:{port}"
    for process in [*workers, scheduler]:
        process.terminate()
        process.wait(timeout=30)


def score_on(runner_settings, days):
    from inferloop.flows.batch_inference import batch_inference

    scoring = batch_inference.with_options(task_runner=configured_task_runner(runner_settings))
    return scoring(partition_date=days[6], end_date=days[9])


def test_local_dask_cluster_scores_every_partition(trained):
    manifests = score_on(load_settings(task_runner="dask"), trained)
    assert [m.rows_scored for m in manifests] == [1_000] * 4
    assert len({m.model_version for m in manifests}) == 1


def test_existing_dask_scheduler_via_address(trained, dask_cluster):
    manifests = score_on(load_settings(task_runner="dask", dask_address=dask_cluster), trained)
    assert [m.rows_scored for m in manifests] == [1_000] * 4
    again = score_on(load_settings(task_runner="dask", dask_address=dask_cluster), trained)
    assert all(m.reused for m in again)


def test_local_cluster_workers_report_to_the_flows_temporary_api(trained, workdir):
    """On embedded defaults (no PREFECT_API_URL) the CLI starts one temporary Prefect API; the
    Dask workers report their task runs to it instead of each starting a server of their own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(workdir / "prefect")  # a cold temporary API of its own, not the harness
    first, last = trained[6], trained[7]
    result = subprocess.run(
        [str(BIN / "inferloop"), "infer", "--from", str(first), "--to", str(last), "--runner", "dask"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("Starting temporary server") == 1, output[-3000:]
    assert output.count("Task run 'score-partition") == 2, output[-3000:]
    assert output.count("│ scored") == 2, output[-3000:]
