"""Batch inference on Dask: a local cluster (started by the CLI), and a separately started
scheduler + workers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inferloop.core.settings import load_settings
from inferloop.runtime.runners import configured_task_runner
from tests.conftest import free_port
from tests.fixtures.pool import ROWS_PER_DAY

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


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
    return scoring(partition_date=days[0], end_date=days[-1])


def test_existing_dask_scheduler_via_address(champion, dask_cluster):
    manifests = score_on(load_settings(task_runner="dask", dask_address=dask_cluster), champion)
    assert [m.rows_scored for m in manifests] == [ROWS_PER_DAY] * 3
    assert not any(m.reused for m in manifests)
    again = score_on(load_settings(task_runner="dask", dask_address=dask_cluster), champion)
    assert all(m.reused for m in again)


def test_local_cluster_workers_print_only_what_the_command_would(champion, workdir):
    """A local Dask cluster scores every partition, and its workers write to the command's
    terminal: without --verbose, no task bookkeeping (the test below shows the same run prints it
    with --verbose)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "INFERLOOP_VERBOSE")}
    env["PREFECT_HOME"] = str(workdir / "prefect")
    first, last = champion[0], champion[1]
    command = ["infer", "--from", str(first), "--to", str(last), "--runner", "dask"]
    result = subprocess.run(
        [str(BIN / "inferloop"), *command], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("│ scored") == 2, result.stdout[-3000:]
    assert "Task run" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.count(f"{ROWS_PER_DAY} rows scored, 0 quarantined") == 2, result.stderr[-3000:]


def test_local_cluster_workers_report_to_the_flows_temporary_api(champion, workdir):
    """On embedded defaults (no PREFECT_API_URL) the CLI starts one temporary Prefect API; the
    Dask workers report their task runs to it instead of each starting a server of their own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(workdir / "prefect")  # a cold temporary API of its own, not the harness
    first, last = champion[0], champion[1]
    result = subprocess.run(
        [
            str(BIN / "inferloop"),
            "--verbose",
            "infer",
            "--from",
            str(first),
            "--to",
            str(last),
            "--runner",
            "dask",
        ],
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
