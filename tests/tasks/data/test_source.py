"""Reading a file to import: formats, delimiters, encodings, and a clear error for each way a
file can be unusable."""

import pandas as pd
import pytest

from inferloop.core.storage import Storage
from inferloop.tasks.data.source import (
    EmptySourceError,
    SourceNotFoundError,
    UnreadableSourceError,
    read_source,
)

LAKE = Storage("file:///nowhere")  # a local source never touches the lake
CSV = "date,day,class\n0.1,2,UP\n0.2,2,DOWN\n"


def read(path, **options):
    return read_source(str(path), LAKE, **options)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected(tmp_path, delimiter):
    path = tmp_path / "feed.csv"
    path.write_text(CSV.replace(",", delimiter))
    source = read(path)
    assert list(source.frame.columns) == ["date", "day", "class"]
    assert source.frame["class"].tolist() == ["UP", "DOWN"] and source.format == "csv"


def test_values_are_read_as_text(tmp_path):
    (tmp_path / "feed.csv").write_text("id,amount\n007,1.50\n008,\n")
    frame = read(tmp_path / "feed.csv").frame
    assert frame["id"].tolist() == ["007", "008"]  # not 7, 8
    assert frame["amount"].iloc[0] == "1.50" and pd.isna(frame["amount"].iloc[1])


def test_a_utf8_byte_order_mark_is_dropped(tmp_path):
    (tmp_path / "feed.csv").write_bytes("\ufeff".encode() + CSV.encode())
    assert read(tmp_path / "feed.csv").frame.columns[0] == "date"


def test_a_decode_error_suggests_the_encoding_option(tmp_path):
    (tmp_path / "feed.csv").write_bytes("city,class\nMünchen,UP\n".encode("latin-1"))
    with pytest.raises(UnreadableSourceError, match=r"not valid utf-8 text.*--encoding latin-1"):
        read(tmp_path / "feed.csv")
    assert read(tmp_path / "feed.csv", encoding="latin-1").frame["city"].tolist() == ["München"]


def test_parquet_is_recognised_by_extension_or_magic_bytes(tmp_path):
    frame = pd.DataFrame({"amount": [1.5, 2.5], "class": ["UP", "DOWN"]})
    frame.to_parquet(tmp_path / "feed.parquet")
    frame.to_parquet(tmp_path / "feed.bin")
    for name in ("feed.parquet", "feed.bin"):
        source = read(tmp_path / name)
        assert source.format == "parquet"
        pd.testing.assert_frame_equal(source.frame, frame)


def test_the_content_hash_identifies_the_file_not_its_name(tmp_path):
    (tmp_path / "a.csv").write_text(CSV)
    (tmp_path / "b.csv").write_text(CSV)
    (tmp_path / "c.csv").write_text(CSV + "0.3,3,UP\n")
    hashes = [read(tmp_path / name).sha256 for name in ("a.csv", "b.csv", "c.csv")]
    assert hashes[0] == hashes[1] != hashes[2]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", EmptySourceError, "is empty"),
        (b"\n\n", EmptySourceError, "is empty"),
        (b"date,day,class\n", EmptySourceError, "has a header but no rows"),
        (b"a,b\n" + b"1,2\n" * 10 + b"3,4,5,6\n", UnreadableSourceError, "not a well-formed CSV"),
        (b"a b\n1 2\n", UnreadableSourceError, "Could not tell the delimiter.*pass --delimiter"),
        (b"PAR1\x00\x01garbage", UnreadableSourceError, "not a readable parquet file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", UnreadableSourceError, "--encoding"),
    ],
    ids=["empty", "blank lines", "header only", "ragged rows", "no delimiter", "corrupt parquet", "binary"],
)
def test_an_unusable_file_is_a_clear_error(tmp_path, content, error, message):
    (tmp_path / "feed.csv").write_bytes(content)
    with pytest.raises(error, match=message):
        read(tmp_path / "feed.csv")


def test_an_empty_parquet_file_is_a_clear_error(tmp_path):
    pd.DataFrame({"amount": pd.Series([], dtype="float64")}).to_parquet(tmp_path / "feed.parquet")
    with pytest.raises(EmptySourceError, match="no rows"):
        read(tmp_path / "feed.parquet")


def test_a_missing_source_says_where_it_looked(tmp_path):
    with pytest.raises(SourceNotFoundError, match=f"file://{tmp_path}/nope.csv does not exist"):
        read(tmp_path / "nope.csv")
    with pytest.raises(SourceNotFoundError, match="is a directory"):
        read(tmp_path)


def test_a_missing_s3_object_is_a_clear_error(s3_endpoint, s3_bucket):
    lake = Storage(f"s3://{s3_bucket}/lake", s3_endpoint)
    with pytest.raises(SourceNotFoundError, match=f"s3://{s3_bucket}/exports/nope.csv does not exist"):
        read_source(f"s3://{s3_bucket}/exports/nope.csv", lake)
    with pytest.raises(SourceNotFoundError, match="names no file"):
        read_source(f"s3://{s3_bucket}", lake)


def test_a_column_name_given_twice_is_named_in_one_line(tmp_path):
    """pyarrow fails on the ambiguous name with a multi-line schema dump; pandas would silently
    rename the CSV's second one 'a.1'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"]), tmp_path / "dup.parquet")
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    for name in ("dup.parquet", "dup.csv"):
        with pytest.raises(UnreadableSourceError, match="more than one column named 'a': rename") as error:
            read(tmp_path / name)
        assert "\n" not in str(error.value)
