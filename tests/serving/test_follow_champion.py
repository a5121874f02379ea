"""`inferloop serve` follows @champion without a restart: the alias moves under load and the next
responses name the new version, with no failed request; a rollback is followed the same way; with
the registry unreachable it keeps serving and reports that it is stale; at shutdown every row a
client saw scored is in the lake with the version that scored it.

The endpoint reaches MLflow through an endpoint that can go away (tests/faults), and writes to
the lake only at shutdown (a flush interval of an hour), so the last test sees what the shutdown
flush wrote."""

import signal
import threading

import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from inferloop.stack.control import served_version
from tests.faults.switchable_endpoint import SwitchableEndpoint
from tests.fixtures.pool import register
from tests.serving.conftest import (
    feed_records,
    start_endpoint,
    unique_model_name,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.slow
QUEUE_ROWS = 4_000  # nothing is written before shutdown: the queue fills


@pytest.fixture(scope="module")
def served(pool, mlflow_server, tmp_path_factory):
    name = unique_model_name("follow")
    first = register(mlflow_server, pool.before, "champion", model_name=name)
    second = register(mlflow_server, pool.after, model_name=name)
    registry = SwitchableEndpoint(int(mlflow_server.rsplit(":", 1)[1]))
    endpoint = start_endpoint(
        tmp_path_factory.mktemp("follow"),
        registry.url,
        name,
        # A refused connection fails the poll at once instead of after MLflow's backoff.
        {
            "INFERLOOP_SERVE_FLUSH_SECONDS": "3600",
            "INFERLOOP_SERVE_QUEUE_ROWS": str(QUEUE_ROWS),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        },
    )
    endpoint.registry, endpoint.versions = registry, (first, second)
    endpoint.seen = []  # (ids, scores, version) of every scored answer, for the lake check
    wait_ready(endpoint, first)
    yield endpoint
    endpoint.stop()
    registry.down()


def score(endpoint, records: list[dict]) -> dict:
    answer = endpoint.post({"dataframe_records": records})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    endpoint.seen.append(
        (
            [p["id"] for p in body["predictions"]],
            [p.get("score") for p in body["predictions"]],
            body["model_version"],
        )
    )
    return body


class Load:
    """One client sending single-row requests back to back until stopped."""

    def __init__(self, endpoint, start: int):
        self.endpoint, self.next, self.versions, self.failures = endpoint, start, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        records = feed_records(2_000)
        while not self._stop.is_set():
            record = records[self.next % len(records)]
            record = {**record, "transaction_id": 10**9 + self.next}
            self.next += 1
            try:
                self.versions.append(score(self.endpoint, [record])["model_version"])
            except AssertionError as error:
                self.failures.append(str(error))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)


def move_alias(tracking_uri: str, endpoint, version: str) -> None:
    """As a promotion (or a rollback in the MLflow UI) does, on the MLflow server itself."""
    MlflowClient(tracking_uri).set_registered_model_alias(endpoint.model_name, "champion", version)


def test_the_alias_moved_under_load_is_followed_without_a_failed_request(served, mlflow_server):
    first, second = served.versions
    with Load(served, start=0) as load:
        wait_until(lambda: len(load.versions) >= 5, what="requests before the move")
        move_alias(mlflow_server, served, second)
        wait_until(lambda: load.versions and load.versions[-1] == second, 60, what="the new version served")
        count = len(load.versions)
        wait_until(lambda: len(load.versions) >= count + 5, what="requests after the move")
    assert not load.failures
    switch = load.versions.index(second)
    assert set(load.versions[:switch]) == {first}
    assert set(load.versions[switch:]) == {second}, "a response after the swap named the old version"
    ready = served.get("/health/ready").json()
    assert ready["version"] == second and ready["stale"] is False
    assert (
        served_version(served.url, timeout=30) == f"serving {served.model_name} v{second}"
    )  # `inferloop status`
    metrics = served.get("/metrics", key="admin").text
    assert "inferloop_serve_model_swaps_total 1.0" in metrics
    assert f'version="{second}"' in metrics and f'version="{first}"' not in metrics


def test_a_rollback_in_the_registry_is_followed(served, mlflow_server):
    first, second = served.versions
    move_alias(mlflow_server, served, second)
    wait_ready(served, second, timeout=60)
    move_alias(mlflow_server, served, first)  # what a rollback in the MLflow UI does
    wait_ready(served, first, timeout=60)
    assert score(served, feed_records(3, first=40))["model_version"] == first


def test_with_the_registry_unreachable_it_keeps_serving_and_reports_stale(served):
    version = served.get("/health/ready").json()["version"]
    served.registry.down()
    try:
        stale = wait_until(
            lambda: (r := served.get("/health/ready")).json()["stale"] and r,
            60,
            what="stale reported",
        )
        assert stale.status_code == 200  # still ready: it serves the loaded version
        body = stale.json()
        assert body["ready"] is True and body["version"] == version
        assert "unreachable" in body["problem"]
        assert score(served, feed_records(2, first=60))["model_version"] == version
        assert "inferloop_serve_registry_stale 1.0" in served.get("/metrics", key="admin").text
        shown = served_version(served.url, timeout=30)  # by `inferloop status`, beside the version
        assert shown.startswith(f"serving {served.model_name} v{version}, stale: ") and "unreachable" in shown
    finally:
        served.registry.up()
    wait_until(lambda: not served.get("/health/ready").json()["stale"], 60, what="stale cleared")


def test_when_the_online_log_is_full_the_endpoint_answers_503(served):
    """Nothing is flushed before shutdown here: 1000-row requests fill the queue."""
    answers = []
    for day in range(6, 16, 2):
        records = feed_records(500, day_index=day) + feed_records(500, day_index=day + 1)
        answer = served.post({"dataframe_records": records})
        answers.append(answer)
        if answer.status_code != 200:
            break
        body = answer.json()
        served.seen.append(
            (
                [p["id"] for p in body["predictions"]],
                [p.get("score") for p in body["predictions"]],
                body["model_version"],
            )
        )
    full = answers[-1]
    assert [a.status_code for a in answers[:-1]] == [200] * (len(answers) - 1)
    assert full.status_code == 503 and full.headers["Retry-After"] == "1"
    assert "queue is full" in full.json()["error"]
    assert sum(len(ids) for ids, _, _ in served.seen) <= QUEUE_ROWS


def test_at_shutdown_every_row_a_client_saw_scored_is_in_the_lake(served):
    """Run last in the module: it stops the endpoint (the queue may be full, see above)."""
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (as its exit status).
    assert served.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in served.log.read_text()
    files = [p for p in served.lake.rglob("*.parquet") if not p.name.startswith(".")]
    lake = pq.ParquetDataset(files).read().to_pandas().set_index("transaction_id")
    expected = {
        row_id: (row_score, version)
        for ids, scores, version in served.seen
        for row_id, row_score in zip(ids, scores, strict=True)
        if row_score is not None
    }
    assert len(lake) == len(expected)
    for row_id, (row_score, version) in expected.items():
        assert lake.loc[row_id, "score"] == pytest.approx(row_score)
        assert lake.loc[row_id, "model_version"] == version
    assert f"wrote {len(expected)} online rows" in served.log.read_text()  # by the shutdown flush
