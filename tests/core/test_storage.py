import time

import pyarrow as pa
import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import Storage, StorageError, lake_storage

TABLE = pa.table({"id": [1, 2, 3], "value": [0.5, 1.5, 2.5]})


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return Storage((tmp_path / "lake").as_uri())
    bucket = request.getfixturevalue("s3_bucket")
    return Storage(f"s3://{bucket}/prefix", request.getfixturevalue("s3_endpoint"))


def test_parquet_and_json_round_trip(storage):
    storage.write_table("t/date=2026-01-01/part-0.parquet", TABLE)
    storage.write_json("t/date=2026-01-01/_manifest.json", {"rows": 3})
    assert storage.read_table("t/date=2026-01-01").equals(TABLE)
    assert storage.read_json("t/date=2026-01-01/_manifest.json") == {"rows": 3}
    assert [str(d) for d in storage.list_partitions("t")] == ["2026-01-01"]
    assert storage.data_files("t/date=2026-01-01") == ["t/date=2026-01-01/part-0.parquet"]


def test_streaming_reads_bounded_batches(storage):
    big = pa.table({"id": list(range(2_500))})
    storage.write_table("big/part-0.parquet", big)
    sizes = [b.num_rows for b in storage.iter_batches("big/part-0.parquet", batch_rows=1_000)]
    assert sizes == [1_000, 1_000, 500]


def test_a_failed_write_leaves_nothing_visible(storage):
    with (
        pytest.raises(RuntimeError, match="boom"),
        storage.open_parquet_writer("p/part-0.parquet", TABLE.schema) as writer,
    ):
        writer.write_table(TABLE)
        raise RuntimeError("boom")
    assert not storage.exists("p/part-0.parquet")
    assert not storage.exists("p") or storage.data_files("p") == []


@pytest.mark.parametrize("path", ["../outside", "a/../../outside", "/../x"])
def test_paths_cannot_escape_the_root(storage, path):
    with pytest.raises(StorageError, match="escapes the storage root"):
        storage.path(path)


def test_missing_partition_is_a_clear_error(storage):
    with pytest.raises(StorageError, match="does not exist"):
        storage.read_table("nowhere/date=2026-01-01")


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    storage = Storage((tmp_path / "lake").as_uri())
    target = tmp_path / "lake" / "t" / "part-0.parquet"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"this is not parquet")
    with pytest.raises(StorageError, match="not a readable parquet file"):
        storage.read_table("t")


def test_unreachable_s3_endpoint_says_what_to_check():
    from tests.conftest import free_port

    storage = Storage("s3://bucket/lake", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageError, match="reachable"):
        storage.write_table("t/part-0.parquet", TABLE)


@pytest.mark.parametrize("attempts", [1, 3])
def test_an_s3_endpoint_down_at_start_fails_fast_with_what_to_check(attempts):
    from tests.conftest import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: like a stopped server
    storage = Storage("s3://bucket/lake", endpoint, s3_max_attempts=attempts)
    started = time.perf_counter()
    with pytest.raises(StorageError) as failure:
        storage.exists("predictions/model=m/version=1/date=2026-01-01/_manifest.json")
    seconds = time.perf_counter() - started
    message = str(failure.value)
    assert f"the S3 endpoint {endpoint} did not answer after {attempts} attempt" in message
    assert ("with backoff" in message) == (attempts > 1)
    assert "INFERLOOP_S3_ENDPOINT_URL" in message and "INFERLOOP_S3_MAX_ATTEMPTS" in message
    # A refused connection fails at once; only the backoff waits count: up to 1 s, 2 s, ... each.
    assert seconds < sum(2**k for k in range(attempts - 1)) + 1.0


def test_lake_storage_takes_the_attempts_from_settings(monkeypatch):
    monkeypatch.setenv("INFERLOOP_S3_MAX_ATTEMPTS", "7")
    assert lake_storage(load_settings().lake).s3_max_attempts == 7


def test_unsupported_scheme_is_refused():
    with pytest.raises(StorageError, match="file:// or s3://"):
        Storage("ftp://host/lake").path("x")


def test_a_missing_bucket_is_named_as_such_not_taken_for_a_missing_partition(s3_endpoint):
    storage = Storage("s3://no-such-bucket/lake", s3_endpoint)
    with pytest.raises(
        StorageError, match=r"The bucket 'no-such-bucket' does not exist at http.*INFERLOOP_STORAGE_URI"
    ):
        storage.exists("transactions/date=2026-01-01")
