"""Reading a file to import: CSV or parquet, at a local path or an s3:// URI, as raw values."""

import csv
import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from inferloop.core.errors import InferloopError
from inferloop.core.storage import Storage

PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = (".parquet", ".pq")
SNIFF_CHARS = 64 * 1024
DELIMITERS = ",;\t|"


class SourceError(InferloopError, ValueError):
    """A file to import cannot be read; the message says what to do."""


class SourceNotFoundError(SourceError):
    """The file to import does not exist."""


class EmptySourceError(SourceError):
    """The file to import holds no rows."""


class UnreadableSourceError(SourceError):
    """The file to import is corrupt, or not in the encoding or delimiter assumed."""


@dataclass(frozen=True)
class SourceFile:
    """A file's rows as raw values: CSV cells as text (empty and NA-like cells missing, as
    pandas reads them), parquet columns as stored."""

    uri: str
    format: Literal["csv", "parquet"]
    sha256: str
    frame: pd.DataFrame


def source_location(source: str, lake: Storage) -> tuple[Storage, str]:
    """The storage holding `source` (a path, file:// or s3:// URI) and the file's name in it.

    An s3:// source uses the lake's S3 endpoint and region."""
    if source.startswith("s3://"):
        folder, _, name = source.removeprefix("s3://").rstrip("/").rpartition("/")
        if not folder or not name:
            raise SourceNotFoundError(f"{source!r} names no file: give s3://bucket/path/file.csv")
        return replace(lake, root_uri=f"s3://{folder}"), name
    if "://" in source and not source.startswith("file://"):
        raise SourceNotFoundError(f"Cannot import {source!r}: give a local path, file:// or s3:// URI")
    path = Path(source.removeprefix("file://")).expanduser().absolute()
    return Storage(path.parent.as_uri()), path.name


def read_source(
    source: str, lake: Storage, delimiter: str | None = None, encoding: str = "utf-8"
) -> SourceFile:
    """Read a CSV or parquet file (parquet by extension or by its magic bytes)."""
    storage, name = source_location(source, lake)
    uri = storage.uri(name)
    if not storage.is_file(name):
        what = "is a directory" if storage.exists(name) else "does not exist"
        raise SourceNotFoundError(f"{uri} {what}: point --source at a CSV or parquet file")
    data = storage.read_bytes(name)
    if not data.strip():
        raise EmptySourceError(f"{uri} is empty: export the data again or point --source at another file")
    is_parquet = data.startswith(PARQUET_MAGIC) or name.lower().endswith(PARQUET_SUFFIXES)
    frame = _parse_parquet(data, uri) if is_parquet else _parse_csv(data, uri, delimiter, encoding)
    if frame.empty:
        raise EmptySourceError(f"{uri} has a header but no rows: export the data again")
    return SourceFile(
        uri=uri,
        format="parquet" if is_parquet else "csv",
        sha256=hashlib.sha256(data).hexdigest(),
        frame=frame.reset_index(drop=True),
    )


def check_unique_columns(names: list[str], uri: str) -> None:
    """A column name given twice cannot be told apart from its twin: refuse, naming it."""
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UnreadableSourceError(
            f"{uri} has more than one column named {', '.join(repr(n) for n in twice)}: "
            "rename or drop the duplicates and export it again"
        )


def _parse_parquet(data: bytes, uri: str) -> pd.DataFrame:
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        check_unique_columns(parquet.schema_arrow.names, uri)
        return parquet.read().to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise UnreadableSourceError(
            f"{uri} is not a readable parquet file ({error}): export it again, or give a CSV"
        ) from error


def _parse_csv(data: bytes, uri: str, delimiter: str | None, encoding: str) -> pd.DataFrame:
    text = decode_text(data, uri, encoding)
    if delimiter is None:
        delimiter = sniff_delimiter(text, uri)
    elif len(delimiter) != 1:
        raise SourceError(f"--delimiter must be one character, got {delimiter!r}")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        header = []  # pandas reports what is wrong with the file below
    check_unique_columns(header, uri)  # pandas would silently rename the second one "a.1"
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str)
    except pd.errors.EmptyDataError as error:
        raise EmptySourceError(f"{uri} has no header and no rows: export the data again") from error
    except pd.errors.ParserError as error:
        raise UnreadableSourceError(
            f"{uri} is not a well-formed CSV with delimiter {delimiter!r} ({str(error).strip()}): "
            "check --delimiter, quoting and the rows' field counts"
        ) from error


def decode_text(data: bytes, uri: str, encoding: str) -> str:
    """The file as text; a UTF-8 byte-order mark is dropped."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except LookupError as error:
        raise SourceError(
            f"Unknown encoding {encoding!r}: give one such as utf-8, latin-1, cp1252"
        ) from error
    except UnicodeDecodeError as error:
        raise UnreadableSourceError(
            f"{uri} is not valid {error.encoding} text (byte {error.start}: "
            f"{error.object[error.start : error.start + 1]!r}): pass the file's encoding, "
            "e.g. --encoding latin-1 or --encoding cp1252"
        ) from error


def sniff_delimiter(text: str, uri: str) -> str:
    """The delimiter of a CSV, guessed from its first lines."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error as error:
        raise UnreadableSourceError(
            f"Could not tell the delimiter of {uri} (tried {DELIMITERS!r}): pass --delimiter"
        ) from error
