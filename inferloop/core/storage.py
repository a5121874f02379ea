"""All reading and writing of the data lake: local paths and s3:// URIs through one interface.

Where things live in the lake is `inferloop.core.catalog`'s business; this module only reads and
writes. A partition is complete only when its `_manifest.json` exists: data files are written
first (atomically: temp name + rename locally, whole-object upload on S3), the manifest last.
"""

import hashlib
import json
import os
import posixpath
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.owners import is_gone
from inferloop.core.settings import LakeSettings


class StorageError(InferloopError, RuntimeError):
    """A lake path is missing, unreadable or unreachable; the message says what to check."""


_BUCKETS_SEEN: set[tuple[str | None, str]] = set()  # (endpoint, bucket) known to exist


@dataclass(frozen=True)
class Storage:
    """The lake at `root_uri` (file:///path or s3://bucket/prefix)."""

    root_uri: str
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_max_attempts: int = 4  # per S3 request, with exponential backoff (AWS standard retry strategy)

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._fs_and_root()[0]

    @property
    def is_s3(self) -> bool:
        return self.root_uri.startswith("s3://")

    def _fs_and_root(self) -> tuple[pafs.FileSystem, str]:
        parsed = urlparse(self.root_uri)
        if parsed.scheme == "file":
            return pafs.LocalFileSystem(), parsed.path.rstrip("/")
        if parsed.scheme == "s3":
            options = {
                "region": self.s3_region,
                "connect_timeout": 5,
                "request_timeout": 30,
                "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=self.s3_max_attempts),
            }
            if self.s3_endpoint_url:
                endpoint = urlparse(self.s3_endpoint_url)
                options |= {"endpoint_override": endpoint.netloc, "scheme": endpoint.scheme}
            return pafs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
        raise StorageError(f"Unsupported storage URI {self.root_uri!r}: use file:// or s3://")

    def path(self, relative: str) -> str:
        """The filesystem path of `relative`, refusing anything that escapes the lake root."""
        normalised = posixpath.normpath(relative.lstrip("/"))
        if normalised == ".." or normalised.startswith("../"):
            raise StorageError(f"Path {relative!r} escapes the storage root {self.root_uri}")
        root = self._fs_and_root()[1]
        return root if normalised == "." else f"{root}/{normalised}"

    def uri(self, relative: str) -> str:
        scheme = "s3://" if self.is_s3 else "file://"
        return scheme + self.path(relative)

    def _call(self, action: str, relative: str, fn, *args):
        with self.translated_errors(action, relative):
            return fn(*args)

    @contextmanager
    def translated_errors(self, action: str, relative: str) -> Iterator[None]:
        """Turn an OSError of the filesystem into a StorageError that says what to check."""
        try:
            yield
        except FileNotFoundError as error:
            raise StorageError(f"{self.uri(relative)} does not exist ({action})") from error
        except OSError as error:
            raise StorageError(
                f"Could not {action} {self.uri(relative)}: {error}; {self._hint(error)}"
            ) from error

    def _hint(self, error: OSError) -> str:
        if not self.is_s3:
            return "check the path and permissions"
        endpoint = self.s3_endpoint_url or "AWS"
        if "NETWORK_CONNECTION" in str(error):  # pyarrow retried it s3_max_attempts times, backing off
            attempts = (
                f"{self.s3_max_attempts} attempts with backoff" if self.s3_max_attempts > 1 else "1 attempt"
            )
            return (
                f"the S3 endpoint {endpoint} did not answer after {attempts}: check that "
                "it is running and reachable (INFERLOOP_S3_ENDPOINT_URL), then rerun; to ride out "
                "longer outages raise INFERLOOP_S3_MAX_ATTEMPTS"
            )
        return f"is the S3 endpoint {endpoint} reachable and are AWS credentials set?"

    def exists(self, relative: str) -> bool:
        info = self._call("stat", relative, self.filesystem.get_file_info, self.path(relative))
        if info.type == pafs.FileType.NotFound:
            self._check_bucket()  # a missing bucket is a setting to fix, not a missing partition
            return False
        return True

    def _check_bucket(self) -> None:
        if not self.is_s3:
            return
        bucket = self._fs_and_root()[1].split("/")[0]
        if (self.s3_endpoint_url, bucket) in _BUCKETS_SEEN:
            return
        info = self._call("stat", "", self.filesystem.get_file_info, bucket)
        if info.type == pafs.FileType.NotFound:
            raise StorageError(
                f"The bucket '{bucket}' does not exist at {self.s3_endpoint_url or 'AWS'}: create it "
                "(`make up` does for its S3 API) or point INFERLOOP_STORAGE_URI at an existing bucket"
            )
        _BUCKETS_SEEN.add((self.s3_endpoint_url, bucket))

    def list_partitions(self, table: str) -> list[date]:
        """Days that have a partition under `table`, sorted."""
        return sorted(
            catalog.partition_day(name) for name in self.subdirectories(table, catalog.PARTITION_KEY)
        )

    def subdirectories(self, relative_dir: str, prefix: str = "") -> list[str]:
        """Names of the directories directly under `relative_dir` starting with `prefix`, sorted."""
        selector = pafs.FileSelector(self.path(relative_dir), allow_not_found=True)
        infos = self._call("list", relative_dir, self.filesystem.get_file_info, selector)
        return sorted(
            info.base_name
            for info in infos
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
        )

    def data_files(self, relative_dir: str) -> list[str]:
        """Parquet files of a partition directory (relative paths), sorted; temp files excluded."""
        selector = pafs.FileSelector(self.path(relative_dir))
        infos = self._call("list", relative_dir, self.filesystem.get_file_info, selector)
        root_len = len(self.path("")) + 1
        return sorted(
            info.path[root_len:]
            for info in infos
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        )

    def read_table(self, relative: str, columns: list[str] | None = None) -> pa.Table:
        """A parquet file, or every parquet file of a partition directory, as one table."""
        files = [relative] if relative.endswith(".parquet") else self.data_files(relative)
        if not files:
            raise StorageError(f"{self.uri(relative)} holds no parquet files")
        tables = [self._call("read", f, self._read_file, f, columns) for f in files]
        return pa.concat_tables(tables, promote_options="default")

    def _read_file(self, relative: str, columns: list[str] | None) -> pa.Table:
        try:
            return pq.read_table(self.path(relative), columns=columns, filesystem=self.filesystem)
        except pa.ArrowInvalid as error:
            raise StorageError(f"{self.uri(relative)} is not a readable parquet file: {error}") from error

    def read_schema(self, relative_file: str) -> pa.Schema:
        """A parquet file's Arrow schema, from its footer (no rows are read)."""
        try:
            with self.translated_errors("read", relative_file):
                return pq.read_schema(self.path(relative_file), filesystem=self.filesystem)
        except pa.ArrowInvalid as error:
            raise StorageError(
                f"{self.uri(relative_file)} is not a readable parquet file: {error}"
            ) from error

    def iter_batches(
        self, relative_file: str, batch_rows: int, dictionary_columns: list[str] = ()
    ) -> Iterator[pa.RecordBatch]:
        """Stream a parquet file in record batches: memory stays bounded by `batch_rows`.

        `dictionary_columns` (low-cardinality strings) are read dictionary-encoded, as parquet
        stores them: no per-row string is materialised.
        """
        source = self._call("open", relative_file, self.filesystem.open_input_file, self.path(relative_file))
        try:
            with self.translated_errors("read", relative_file):
                parquet = pq.ParquetFile(source)
                present = [c for c in dictionary_columns if c in parquet.schema_arrow.names]
                if present:
                    parquet = pq.ParquetFile(source, metadata=parquet.metadata, read_dictionary=present)
        except pa.ArrowInvalid as error:
            raise StorageError(
                f"{self.uri(relative_file)} is not a readable parquet file: {error}"
            ) from error
        # Batches are fetched lazily: an S3 outage surfaces here, mid-stream. One reader per
        # row group: a reader's pre-buffer cache (coalesced reads, for S3) keeps every row
        # group it has read until it is done (+33 MB per 2M rows read, 10M rows: +130 MB).
        with source, self.translated_errors("read", relative_file):
            for row_group in range(parquet.num_row_groups):
                yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[row_group])

    def write_table(self, relative_file: str, table: pa.Table) -> None:
        """Write one parquet file so readers see all of it or nothing."""
        with self.open_parquet_writer(relative_file, table.schema) as writer:
            writer.write_table(table)

    def open_parquet_writer(self, relative_file: str, schema: pa.Schema) -> "AtomicParquetWriter":
        return AtomicParquetWriter(self, relative_file, schema)

    def write_json(self, relative_file: str, payload: dict) -> None:
        self.write_bytes(relative_file, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())

    def write_bytes(self, relative_file: str, data: bytes) -> None:
        """A small file, whole or not at all (temp + rename locally, one PUT on S3)."""
        target = self.path(relative_file)
        fs = self.filesystem
        self._call("create", relative_file, fs.create_dir, posixpath.dirname(target))
        if self.is_s3:  # a single PUT: the object appears whole or not at all
            self._call("write", relative_file, self._put, target, data)
            return
        temp = f"{target}.{uuid.uuid4().hex}.tmp"
        self._call("write", relative_file, self._put, temp, data)
        self._call("publish", relative_file, fs.move, temp, target)

    def _put(self, target: str, data: bytes) -> None:
        # Opening, writing and closing all stay inside the error translation: on S3 the
        # upload happens at close, and that is where an outage surfaces.
        with self.filesystem.open_output_stream(target) as out:
            out.write(data)

    def read_json(self, relative_file: str) -> dict:
        return json.loads(self.read_bytes(relative_file))

    def sha256(self, relative_file: str) -> tuple[str, int]:
        """The SHA-256 hex digest and size in bytes of a file, read in 1 MiB chunks."""
        digest, size = hashlib.sha256(), 0
        target = self.path(relative_file)
        with (
            self.translated_errors("read", relative_file),
            self.filesystem.open_input_stream(target) as source,
        ):
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def read_bytes(self, relative_file: str) -> bytes:
        """A whole file as bytes (a compressed file such as x.csv.gz is decompressed)."""
        target = self.path(relative_file)
        with self._call("open", relative_file, self.filesystem.open_input_stream, target) as stream:
            return self._call("read", relative_file, stream.read)

    def size(self, relative_file: str) -> int:
        """A file's size in bytes, from its metadata (nothing is read)."""
        info = self._call("stat", relative_file, self.filesystem.get_file_info, self.path(relative_file))
        if info.type == pafs.FileType.NotFound:
            raise StorageError(f"{self.uri(relative_file)} does not exist (stat)")
        return info.size

    def is_file(self, relative: str) -> bool:
        info = self._call("stat", relative, self.filesystem.get_file_info, self.path(relative))
        return info.type == pafs.FileType.File

    def delete_dir(self, relative_dir: str) -> None:
        fs = self.filesystem
        if self.exists(relative_dir):
            self._call("delete", relative_dir, fs.delete_dir, self.path(relative_dir))

    def delete_file(self, relative_file: str) -> None:
        """Delete one file; a file that is already gone is no error (a rerun finishes the job)."""
        if self.is_file(relative_file):
            self._call("delete", relative_file, self.filesystem.delete_file, self.path(relative_file))


class AtomicParquetWriter:
    """A parquet writer whose file becomes visible under its final name only on success.

    The file is written under a hidden temp name (`.name.<uuid>.tmp`) and moved into place on
    success: a rename on local disk, a server-side copy on S3 (each object appears whole). On
    error the temp file is removed.
    """

    def __init__(self, storage: Storage, relative_file: str, schema: pa.Schema):
        self.storage = storage
        self.relative_file = relative_file
        self.schema = schema
        self.rows = 0  # rows written so far

    def __enter__(self) -> "AtomicParquetWriter":
        fs = self.storage.filesystem
        self.target = self.storage.path(self.relative_file)
        directory, name = posixpath.split(self.target)
        # The writer's host and pid in the name: a later writer of the same file removes the
        # temp files of writers killed on this host (readers never see them).
        self.temp = f"{directory}/.{name}.{uuid.uuid4().hex[:12]}.{os.getpid()}@{socket.gethostname()}.tmp"
        self.storage._call("create", self.relative_file, fs.create_dir, directory)
        self._sweep_killed_writers(directory, name)
        self._stream = self.storage._call("write", self.relative_file, fs.open_output_stream, self.temp)
        self._writer = pq.ParquetWriter(self._stream, self.schema, compression="zstd")
        return self

    def _sweep_killed_writers(self, directory: str, name: str) -> None:
        pattern = re.compile(rf"^\.{re.escape(name)}\.[0-9a-f]{{12}}\.(\d+)@(.+)\.tmp$")
        fs = self.storage.filesystem
        selector = pafs.FileSelector(directory, allow_not_found=True)
        for info in self.storage._call("list", self.relative_file, fs.get_file_info, selector):
            found = pattern.match(info.base_name)
            if found and is_gone(found.group(2), int(found.group(1))):
                with suppress(OSError):  # another writer swept it first
                    fs.delete_file(info.path)

    def write_table(self, table: pa.Table) -> None:
        self.storage._call("write", self.relative_file, self._writer.write_table, table)
        self.rows += table.num_rows

    def write_batch(self, batch: pa.RecordBatch) -> None:  # a full buffer uploads a part on S3
        self.storage._call("write", self.relative_file, self._writer.write_batch, batch)
        self.rows += batch.num_rows

    def __exit__(self, exc_type, exc, tb) -> None:
        fs = self.storage.filesystem
        if exc_type is not None:
            try:
                self._writer.close()
                self._stream.close()
                fs.delete_file(self.temp)
            except OSError:
                pass  # the original error matters more; a stray temp file is invisible to readers
            return
        self.storage._call("write", self.relative_file, self._writer.close)
        self.storage._call("write", self.relative_file, self._stream.close)
        self.storage._call("publish", self.relative_file, fs.move, self.temp, self.target)


def lake_storage(lake: LakeSettings) -> Storage:
    """The lake the settings' lake group points at."""
    return Storage(lake.storage_uri, lake.s3_endpoint_url, lake.s3_region, lake.s3_max_attempts)
