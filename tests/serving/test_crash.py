"""kill -9 under load: every visible online file is whole and readable, every row in it is one a
client saw scored (same score, same version), and a restarted endpoint appends beside them."""

import signal
import threading

import pyarrow.parquet as pq
import pytest

from tests.fixtures.pool import register
from tests.serving.conftest import (
    feed_records,
    start_endpoint,
    unique_model_name,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.slow


def lake_rows(lake):
    files = [p for p in lake.rglob("*.parquet") if not p.name.startswith(".")]
    return pq.ParquetDataset(files).read().to_pandas() if files else None


def test_kill_9_under_load_leaves_only_whole_files_of_rows_clients_saw(pool, mlflow_server, tmp_path):
    name = unique_model_name("crash")
    version = register(mlflow_server, pool.before, "champion", model_name=name)
    root = tmp_path / "serve"
    endpoint = start_endpoint(root, mlflow_server, name, {"INFERLOOP_SERVE_FLUSH_SECONDS": "0.2"})
    wait_ready(endpoint, version)
    answered, stop = {}, threading.Event()

    def load(day: int) -> None:
        for record in feed_records(500, day_index=day):
            if stop.is_set():
                return
            try:
                body = endpoint.post({"dataframe_records": [record]}).json()
            except Exception:  # the process was killed mid-request
                return
            answered[body["predictions"][0]["id"]] = (body["predictions"][0]["score"], body["model_version"])

    clients = [threading.Thread(target=load, args=(day,)) for day in (2, 3)]
    for client in clients:
        client.start()
    try:
        # Killed once some rows are on disk and more are queued.
        wait_until(lambda: (rows := lake_rows(endpoint.lake)) is not None and len(rows) >= 20, 60)
    finally:
        endpoint.process.send_signal(signal.SIGKILL)
        endpoint.process.wait()
        stop.set()
        for client in clients:
            client.join(timeout=60)

    written = lake_rows(endpoint.lake).set_index("transaction_id")
    assert written.index.is_unique
    assert set(written.index) <= set(answered), "a row in the lake no client saw scored"
    for row_id, (score, served_version) in answered.items():
        if row_id in written.index:
            assert written.loc[row_id, "score"] == pytest.approx(score)
            assert written.loc[row_id, "model_version"] == served_version
    lost = len(answered) - len(written)
    assert 0 <= lost < len(answered)

    restarted = start_endpoint(
        root / "again", mlflow_server, name, {"INFERLOOP_STORAGE_URI": endpoint.lake.as_uri()}
    )
    try:
        wait_ready(restarted, version)
        body = restarted.post({"dataframe_records": feed_records(3, day_index=4)}).json()
    finally:
        restarted.stop()
    after = lake_rows(endpoint.lake).set_index("transaction_id")
    assert len(after) == len(written) + body["rows_scored"] == len(written) + 3
