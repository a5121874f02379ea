"""kill -9 the scoring process at random points: no partial output is ever visible, and the
rerun produces the same predictions as an uninterrupted run."""

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from datetime import date

import pyarrow.parquet as pq
import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.model.training import build_pipeline

pytestmark = pytest.mark.slow
DAY = date(2026, 1, 1)
OUTPUT = f"predictions/model=crash/version=1/date={DAY}"
ROWS = 4_500  # the committed suite's row-count bounds suit days of a few thousand rows


@pytest.fixture
def crash_setup(workdir, tmp_path):
    settings = load_settings(score_batch_rows=1_000)
    storage = lake_storage(settings.lake)
    write_synthetic_feed.fn(storage, settings.dataset, GeneratorConfig(days=1, rows_per_day=ROWS))
    features, labels = generate_day(GeneratorConfig(rows_per_day=20_000, seed=5), 0)
    frame = features.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id")
    model = build_pipeline(settings.dataset).fit(prepare_features(frame, settings.dataset), frame["is_fraud"])
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(pickle.dumps(model))
    env = {**os.environ, "INFERLOOP_SCORE_BATCH_ROWS": "1000"}
    command = [sys.executable, "-m", "tests.faults.score_one", str(model_file), DAY.isoformat()]
    return storage, command, env


def visible_state(storage) -> tuple[bool, list[str]]:
    committed = storage.exists(f"{OUTPUT}/_manifest.json")
    files = storage.data_files(OUTPUT) if storage.exists(OUTPUT) else []
    return committed, files


def predictions(storage):
    table = storage.read_table(OUTPUT).select(["transaction_id", "score", "predicted_label"])
    return table.sort_by("transaction_id")


def test_killed_runs_leave_nothing_partial_and_the_rerun_completes(crash_setup):
    storage, command, env = crash_setup
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    full_run_seconds = time.perf_counter() - started
    reference = predictions(storage)
    assert reference.num_rows == ROWS
    storage.delete_dir("predictions")

    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, full_run_seconds))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        committed, files = visible_state(storage)
        for relative in files:  # anything under its final name is a whole, readable file
            assert pq.read_metadata(storage.path(relative)).num_rows == ROWS
        if committed:  # finished before the kill: check it, then start over
            assert predictions(storage).equals(reference)
            storage.delete_dir("predictions")
    assert kills >= 3, "the kills should interrupt most runs"

    subprocess.run(command, env=env, check=True, capture_output=True)
    assert visible_state(storage)[0]
    assert predictions(storage).equals(reference)
    manifest = storage.read_json(f"{OUTPUT}/_manifest.json")
    assert manifest["rows_in"] == manifest["rows_scored"] + manifest["rows_quarantined"] == ROWS
