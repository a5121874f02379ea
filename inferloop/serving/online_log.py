"""Online rows feed the lake: every scored row, with its score, label, version, the runtime that
scored it (`treelite` for the compiled library, `sklearn` for the pipeline, as batch manifests
name it), request id and time, appended to `catalog.online_predictions(model, partition)` (the
partition of the row's event time, in the dataset's unit: an hour, day, week or month) by a background
writer.

The queue is bounded in rows: a request reserves room for its rows before it is scored and the
room is freed once they are written (or rejected). When there is no room the endpoint answers
503 rather than grow without bound. Rows are written every `serve_flush_seconds` and at
shutdown, one file per flush and partition, each written under a hidden temporary name and
renamed (`Storage.write_table`): a kill -9 loses at most the rows of the unflushed interval and
never leaves a half-written file where readers look. When a write fails (the lake is away) the
rows stay queued and the next flush tries again.
"""

import logging
import threading
import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from inferloop.core import catalog
from inferloop.core.periods import DAILY, Partitioning
from inferloop.core.storage import Storage

log = logging.getLogger("inferloop.serve")

SCORE_COLUMNS = [
    ("score", pa.float64()),
    ("predicted_label", pa.int8()),
    ("model_version", pa.string()),
    ("runtime", pa.string()),  # what produced the score: "treelite" or "sklearn" (`runtime_of`)
    ("request_id", pa.string()),
    ("scored_at", pa.timestamp("us", tz="UTC")),
]


JOIN_SECONDS = 0.5  # how often the writer joins the queued tables into one, between flushes


def combined(tables: list[pa.Table]) -> pa.Table:
    """The tables as one, each column in one chunk."""
    return pa.concat_tables(tables).combine_chunks()


def online_schema(request_schema: pa.Schema) -> pa.Schema:
    """The columns of an online predictions file: the batch's typed columns, then the score."""
    return pa.schema([*request_schema, *SCORE_COLUMNS])


class OnlineLog:
    """A bounded queue of scored rows and the thread that writes them to the lake."""

    def __init__(
        self,
        storage: Storage,
        model_name: str,
        time_column: str,
        capacity_rows: int,
        flush_seconds: float,
        partitioning: Partitioning = DAILY,
    ):
        self.storage, self.model_name, self.time_column = storage, model_name, time_column
        self.partitioning = partitioning
        self.capacity_rows, self.flush_seconds = capacity_rows, flush_seconds
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time (the thread's and the final one)
        self._pending: list[pa.Table] = []
        self._joined = 0  # the leading pending tables that are joins already
        self._held = 0  # rows reserved, queued or being written
        self.rows_written = 0
        self.files_written = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held_rows(self) -> int:
        return self._held

    def reserve(self, rows: int) -> bool:
        """Room for `rows` more rows; False when the queue is full."""
        with self._lock:
            if self._held + rows > self.capacity_rows:
                return False
            self._held += rows
            return True

    def release(self, rows: int) -> None:
        with self._lock:
            self._held -= rows

    def append(self, rows: pa.Table, reserved: int) -> None:
        """Queue scored `rows` (of a reservation of `reserved` rows: the rest were rejected)."""
        with self._lock:
            if rows.num_rows:
                self._pending.append(rows)
            self._held -= reserved - rows.num_rows

    def flush(self) -> int:
        """Write the queued rows, one file per partition; returns the rows written. The rows a
        write did not take (the lake is away) stay queued for the next flush, and only those."""
        with self._flushing:
            with self._lock:
                taken, self._pending, self._joined = self._pending, [], 0
            if not taken:
                return 0
            try:
                table = combined(taken)
            except Exception as error:  # nothing written: every row stays queued, as it was
                return self._written(taken, taken, 0, error, joined=False)
            try:
                files, left, error = self._write(table)
            except Exception as failure:  # before any file was written
                files, left, error = 0, table, failure
            return self._written([table], [left] if left is not None else [], files, error, joined=True)

    def _written(self, taken, left, files, error, joined: bool) -> int:
        """Account for a flush of `taken` that left `left` unwritten (queued again, first)."""
        written = sum(t.num_rows for t in taken) - sum(t.num_rows for t in left)
        with self._lock:
            self._pending = [*left, *self._pending]
            self._joined = len(left) if joined else 0  # a joined table stays one: joins leave it
            self._held -= written
        self.rows_written += written
        self.files_written += files
        self.last_error = str(error) if left else None
        if left:
            log.warning(
                "could not write %d online rows, will retry: %s", sum(t.num_rows for t in left), error
            )
        return written

    def _write(self, table: pa.Table) -> tuple[int, pa.Table | None, Exception | None]:
        """Write `table`, one file per partition, until a write fails: the files written, and the
        rows of the partitions not written with the error (None, None when all were)."""
        times = table.column(self.time_column)
        scored = pc.cast(table.column("scored_at"), pa.timestamp("us"))
        moments = pc.coalesce(times, scored)  # a row without a time: when it was scored
        # The first instant of each row's partition (an hour, day, week or month).
        starts = pa.array(self.partitioning.floor_times(moments.to_pandas()), pa.timestamp("us"))
        part = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}"
        partitions = pc.unique(starts).to_pylist()
        for number, start in enumerate(partitions):
            rows = table.filter(pc.equal(starts, pa.scalar(start, pa.timestamp("us"))))
            key = self.partitioning.floor(start)
            try:
                self.storage.write_table(catalog.online_predictions_file(self.model_name, key, part), rows)
            except Exception as error:
                not_written = pc.is_in(starts, pa.array(partitions[number:], pa.timestamp("us")))
                return number, table.filter(not_written), error
        return len(partitions), None, None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="online-log", daemon=True)
        self._thread.start()

    def _join_queued(self) -> None:
        """Join the tables queued since the last join into one. Under load the queue gets a table
        of a few rows per predict call, ~600 in 5 s; joining them all at the flush took 90-150 ms
        of CPU (unjoined, writing took ~600 ms) and stalled every request in flight on 2 cores
        (p99 in the second of a flush 120-200 ms, 50-70 ms in the others). Joined every
        JOIN_SECONDS, a step is a tenth of that."""
        with self._flushing:
            with self._lock:
                done = self._joined
                fresh, self._pending = self._pending[done:], self._pending[:done]
            try:
                joined = [combined(fresh)] if fresh else []
            except Exception:  # left as they were: the flush joins them or keeps them queued
                log.exception("could not join %d queued online tables", len(fresh))
                joined = fresh
            with self._lock:  # tables appended meanwhile stay after the join
                self._pending[done:done] = joined
                self._joined = done + (len(joined) if joined is not fresh else 0)

    def _run(self) -> None:
        flushed = time.monotonic()
        while not self._stop.wait(min(JOIN_SECONDS, self.flush_seconds)):
            if time.monotonic() - flushed >= self.flush_seconds:
                self.flush()
                flushed = time.monotonic()
            else:
                self._join_queued()

    def close(self) -> None:
        """Stop the thread and write what is queued (at shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()
