import pyarrow as pa
import pytest

from inferloop.storage import Storage, StorageError

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


def test_unsupported_scheme_is_refused():
    with pytest.raises(StorageError, match="file:// or s3://"):
        Storage("ftp://host/lake").path("x")
