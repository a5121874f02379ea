"""The S3 endpoint of the lake goes away during batch inference: requests are retried with
backoff, then the run fails with a message naming the endpoint; what is visible is either a
committed partition or no partial data, and the rerun completes every partition once."""

import io
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass

import boto3
import pyarrow.parquet as pq
import pytest

from inferloop.core.catalog import MANIFEST
from inferloop.core.settings import load_settings
from inferloop.core.storage import Storage, StorageError, lake_storage
from tests.conftest import BIN, free_port, start_server, stop_server
from tests.faults.switchable_endpoint import SwitchableEndpoint
from tests.fixtures.pool import TO_SCORE

pytestmark = pytest.mark.slow
BUCKET = "outage"


@dataclass
class Outage:
    endpoint: SwitchableEndpoint  # what inferloop talks to
    behind: object  # a boto3 client of moto itself: sees the bucket while the endpoint is down
    days: list
    moto: subprocess.Popen


@pytest.fixture
def endpoint_to_lake(tmp_path, workdir, monkeypatch):
    """An empty lake on this test's own moto server, reached through an endpoint that can go
    away; `days` are the 3 days the `outage` fixture's champion leaves to score."""
    port = free_port()
    moto = start_server(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        f"http://127.0.0.1:{port}/moto-api/",
        tmp_path / "moto.log",
    )
    endpoint = SwitchableEndpoint(port)
    behind = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
    behind.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", f"s3://{BUCKET}/lake")
    monkeypatch.setenv("INFERLOOP_S3_ENDPOINT_URL", endpoint.url)
    yield Outage(endpoint, behind, TO_SCORE, moto)
    endpoint.down()
    if moto.poll() is None:
        stop_server(moto)


@pytest.fixture
def outage(endpoint_to_lake, request) -> Outage:
    """`endpoint_to_lake`, with the feed written to the lake and a champion to score it."""
    assert request.getfixturevalue("champion") == endpoint_to_lake.days
    return endpoint_to_lake


def outage_at_manifest(monkeypatch, endpoint: SwitchableEndpoint, nth: int, back_after: float | None):
    """Take the endpoint down just before the `nth` predictions manifest is written (its data file
    is already published), and bring it back `back_after` seconds later (None: never).
    Returns the seconds each predictions manifest write took, by partition directory."""
    original, lock, took = Storage.write_json, threading.Lock(), {}

    def write_json(self, relative_file, payload):
        if not (relative_file.startswith("predictions/") and relative_file.endswith(MANIFEST)):
            return original(self, relative_file, payload)
        with lock:
            if len(took) + 1 == nth:
                endpoint.down()
                if back_after is not None:
                    threading.Timer(back_after, endpoint.up).start()
            took[relative_file.removesuffix(f"/{MANIFEST}")] = None
        started = time.perf_counter()
        try:
            return original(self, relative_file, payload)
        finally:
            took[relative_file.removesuffix(f"/{MANIFEST}")] = time.perf_counter() - started

    monkeypatch.setattr(Storage, "write_json", write_json)
    return took


def lake_objects(outage: Outage) -> dict[str, bytes]:
    """Every object under the lake's predictions, read from moto directly (the endpoint may be down)."""
    pages = outage.behind.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/predictions/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {
        key.removeprefix("lake/"): outage.behind.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        for key in keys
    }


def partitions(objects: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """Objects by partition directory, then by file name."""
    grouped: dict[str, dict[str, bytes]] = {}
    for key, data in objects.items():
        directory, _, name = key.rpartition("/")
        if name:  # not one of the empty "directory" marker objects pyarrow creates
            grouped.setdefault(directory, {})[name] = data
    return grouped


def test_endpoint_gone_mid_run_fails_clearly_leaves_no_partial_output_and_the_rerun_completes(
    outage, monkeypatch
):
    from inferloop.flows.batch_inference import batch_inference

    monkeypatch.setenv("INFERLOOP_S3_MAX_ATTEMPTS", "3")
    days = outage.days
    took = outage_at_manifest(monkeypatch, outage.endpoint, nth=2, back_after=None)
    with pytest.raises(StorageError) as failure:
        batch_inference(partition_date=days[0], end_date=days[-1])
    seconds_to_fail = time.perf_counter() - outage.endpoint.went_down_at
    message = " ".join(str(failure.value).split())
    assert f"the S3 endpoint {outage.endpoint.url} did not answer after 3 attempts with backoff" in message
    assert "check that it is running and reachable (INFERLOOP_S3_ENDPOINT_URL)" in message
    print(f"run failed {seconds_to_fail:.1f} s after the endpoint went (3 attempts per request)")

    # What a reader sees at the moment of failure (moto still holds the bucket).
    at_failure = partitions(lake_objects(outage))
    cut_off = list(took)[1]  # its data file was published, then the endpoint went before its manifest
    assert "part-0.parquet" in at_failure[cut_off] and MANIFEST not in at_failure[cut_off]
    committed = {d for d, files in at_failure.items() if MANIFEST in files}
    assert len(committed) <= 1 and len(committed) < len(days)
    for directory, files in at_failure.items():
        data_files = [n for n in files if n.endswith(".parquet") and not n.startswith(".")]
        assert all(n == "part-0.parquet" or n.startswith(".") for n in files if n != MANIFEST)
        if directory in committed:  # committed: the manifest's files are there, byte for byte
            manifest = json.loads(files[MANIFEST])
            assert [f["path"].rsplit("/", 1)[1] for f in manifest["files"]] == data_files
            assert manifest["files"][0]["bytes"] == len(files["part-0.parquet"])
        for name in data_files:  # anything under a final name is a whole parquet file
            assert pq.read_metadata(io.BytesIO(files[name])).num_rows > 0

    # The endpoint is back: the rerun completes every partition, each once, keeping what was committed.
    outage.endpoint.up()
    rerun = batch_inference(partition_date=days[0], end_date=days[-1])
    assert [m.partition_date for m in rerun] == [str(d) for d in days]
    assert {m.partition_date for m in rerun if m.reused} == {d.rsplit("date=", 1)[1] for d in committed}
    storage = lake_storage(load_settings().lake)
    after = partitions(lake_objects(outage))
    for manifest in rerun:
        directory = manifest.output_uri.split(f"s3://{BUCKET}/lake/", 1)[1]
        assert storage.data_files(directory) == [f"{directory}/part-0.parquet"]
        ids = storage.read_table(directory, ["transaction_id"]).column(0).to_pylist()
        assert len(ids) == len(set(ids)) == manifest.rows_scored
        assert manifest.rows_in == manifest.rows_scored + manifest.rows_quarantined
        assert storage.sha256(f"{directory}/part-0.parquet")[0] == manifest.files[0]["sha256"]
        if directory in committed:
            assert after[directory][MANIFEST] == at_failure[directory][MANIFEST]
            assert after[directory]["part-0.parquet"] == at_failure[directory]["part-0.parquet"]
        elif "part-0.parquet" in at_failure.get(directory, {}):  # whole, just not committed yet
            before = pq.read_table(io.BytesIO(at_failure[directory]["part-0.parquet"]))
            assert sorted(before.column("transaction_id").to_pylist()) == sorted(ids)


@pytest.mark.parametrize("attempts", [10, 1])
def test_retries_with_backoff_ride_out_a_short_outage(outage, monkeypatch, attempts):
    from inferloop.flows.batch_inference import batch_inference

    monkeypatch.setenv("INFERLOOP_S3_MAX_ATTEMPTS", str(attempts))
    outage_seconds = 1.5
    took = outage_at_manifest(monkeypatch, outage.endpoint, nth=1, back_after=outage_seconds)
    if attempts == 1:  # no retry: the first refused connection is the end of the run
        with pytest.raises(StorageError, match="did not answer after 1 attempt: check"):
            batch_inference(partition_date=outage.days[0], end_date=outage.days[-1])
        return
    manifests = batch_inference(partition_date=outage.days[0], end_date=outage.days[-1])
    assert len(manifests) == 3 and not any(m.reused for m in manifests)
    # The manifest write that met the outage waited it out, backing off, instead of failing.
    assert max(took.values()) >= outage_seconds


def test_infer_with_the_server_gone_exits_1_naming_the_endpoint_after_retries(
    endpoint_to_lake, prefect_harness
):
    from prefect.settings import PREFECT_API_URL

    outage = endpoint_to_lake  # no feed or champion: the command fails before it needs them
    outage.endpoint.down()
    stop_server(outage.moto)  # the server itself is gone too: nothing listens at the endpoint
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),  # the test harness's server
        "INFERLOOP_S3_MAX_ATTEMPTS": "4",
        "ARROW_S3_LOG_LEVEL": "warn",  # the AWS SDK logs each retry and its backoff (to stdout)
    }
    days = outage.days
    command = [str(BIN / "inferloop"), "infer", "--from", str(days[0]), "--to", str(days[-1])]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    output = " ".join(result.stdout.split())
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    # The first request, listing the lake's partitions before any flow starts, is the one that fails.
    assert f"error: Could not list s3://{BUCKET}/lake/" in output
    assert f"the S3 endpoint {outage.endpoint.url} did not answer after 4 attempts with backoff" in output
    assert "Traceback" not in result.stdout + result.stderr
    waits = [int(ms) for ms in re.findall(r"Request failed, now waiting (\d+) ms", result.stdout)]
    # 4 attempts: 3 backoff waits per failed request
    assert len(waits) >= 3 and len(waits) % 3 == 0, result.stdout[-3000:]
    assert all(wait <= 4_000 for wait in waits) and sum(waits) > 0  # jittered, up to 1 s, 2 s, 4 s
    print(f"inferloop infer exited 1 after {seconds:.1f} s (process start included); waits {waits} ms")
