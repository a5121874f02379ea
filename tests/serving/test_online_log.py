"""The online log: a bounded queue (full -> the endpoint answers 503), one atomic file per flush
and event day, rows kept and retried when the lake is away."""

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from inferloop.core import catalog
from inferloop.core.periods import Partitioning
from inferloop.core.storage import Storage
from inferloop.serving.online_log import OnlineLog, online_schema

REQUEST_SCHEMA = pa.schema([("transaction_id", pa.int64()), ("event_time", pa.timestamp("us"))])


def scored_rows(ids: list[int], days: list[date]) -> pa.Table:
    rows = len(ids)
    return pa.Table.from_pydict(
        {
            "transaction_id": ids,
            "event_time": [datetime(d.year, d.month, d.day, 12) for d in days],
            "score": [0.25] * rows,
            "predicted_label": [0] * rows,
            "model_version": ["3"] * rows,
            "runtime": ["treelite"] * rows,
            "request_id": ["r1"] * rows,
            "scored_at": [datetime.now(UTC)] * rows,
        },
        schema=online_schema(REQUEST_SCHEMA),
    )


@pytest.fixture
def storage(tmp_path):
    return Storage((tmp_path / "lake").as_uri())


def test_the_queue_is_bounded_in_rows_until_they_are_written(storage):
    log = OnlineLog(storage, "m", "event_time", capacity_rows=10, flush_seconds=60)
    assert log.reserve(8)
    assert not log.reserve(3)  # full: the endpoint answers 503
    log.append(scored_rows([1, 2, 3, 4, 5, 6], [date(2026, 1, 6)] * 6), reserved=8)  # 2 were rejected
    assert log.held_rows == 6 and log.reserve(3)
    log.release(3)
    assert log.flush() == 6
    assert log.held_rows == 0 and log.reserve(10)


def test_a_flush_writes_one_file_per_event_day(storage):
    log = OnlineLog(storage, "m", "event_time", capacity_rows=100, flush_seconds=60)
    days = [date(2026, 1, 6), date(2026, 1, 7), date(2026, 1, 6)]
    log.reserve(3)
    log.append(scored_rows([1, 2, 3], days), reserved=3)
    log.flush()
    first = storage.read_table(catalog.online_predictions("m", date(2026, 1, 6)))
    second = storage.read_table(catalog.online_predictions("m", date(2026, 1, 7)))
    assert sorted(first.column("transaction_id").to_pylist()) == [1, 3]
    assert second.column("transaction_id").to_pylist() == [2]
    assert log.flush() == 0  # nothing queued: nothing written


def test_joining_the_queue_between_flushes_keeps_every_row_in_order(storage):
    log = OnlineLog(storage, "m", "event_time", capacity_rows=100, flush_seconds=60)
    log.reserve(9)
    for first in (1, 4, 7):  # one table per predict call
        log.append(scored_rows([first, first + 1, first + 2], [date(2026, 1, 6)] * 3), reserved=3)
    log._join_queued()
    assert len(log._pending) == 1 and log._pending[0].column("transaction_id").num_chunks == 1
    assert log.held_rows == 9  # joined, not written
    log.reserve(2)
    log.append(scored_rows([10], [date(2026, 1, 6)]), reserved=1)
    log.append(scored_rows([11], [date(2026, 1, 6)]), reserved=1)
    log._join_queued()  # joins the two new tables, not the first join again
    assert [table.num_rows for table in log._pending] == [9, 2]
    assert log.flush() == 11
    written = storage.read_table(catalog.online_predictions("m", date(2026, 1, 6)))
    assert written.column("transaction_id").to_pylist() == list(range(1, 12))
    assert log.held_rows == 0


def test_a_weekly_feed_gets_its_online_rows_in_week_partitions(storage):
    log = OnlineLog(storage, "m", "event_time", 100, 60, partitioning=Partitioning("week"))
    days = [date(2026, 1, 6), date(2026, 1, 11), date(2026, 1, 12)]  # Tue, Sun, next Mon
    log.reserve(3)
    log.append(scored_rows([1, 2, 3], days), reserved=3)
    log.flush()
    week = storage.read_table(catalog.online_predictions("m", date(2026, 1, 5)))
    assert sorted(week.column("transaction_id").to_pylist()) == [1, 2]
    assert storage.read_table(catalog.online_predictions("m", date(2026, 1, 12))).num_rows == 1


def test_an_hourly_feed_gets_its_online_rows_in_hour_partitions(storage):
    log = OnlineLog(storage, "m", "event_time", 100, 60, partitioning=Partitioning("hour"))
    log.reserve(2)
    log.append(scored_rows([1, 2], [date(2026, 1, 6)] * 2), reserved=2)  # both at 12:00
    log.flush()
    hour = storage.read_table(catalog.online_predictions("m", datetime(2026, 1, 6, 12)))
    assert sorted(hour.column("transaction_id").to_pylist()) == [1, 2]


def test_rows_stay_queued_while_the_lake_is_away_and_are_written_when_it_is_back(tmp_path):
    blocker = tmp_path / "lake"
    blocker.write_text("not a directory")  # the lake root cannot be created: every write fails
    log = OnlineLog(Storage(blocker.as_uri()), "m", "event_time", capacity_rows=5, flush_seconds=60)
    log.reserve(2)
    log.append(scored_rows([1, 2], [date(2026, 1, 6)] * 2), reserved=2)
    assert log.flush() == 0 and log.last_error
    assert log.held_rows == 2 and not log.reserve(4)  # still held: the queue fills, then 503
    blocker.unlink()
    assert log.flush() == 2 and log.last_error is None and log.held_rows == 0
    stored = Storage(blocker.as_uri()).read_table(catalog.online_predictions("m", date(2026, 1, 6)))
    assert stored.num_rows == 2


def test_a_flush_that_writes_some_partitions_keeps_only_the_others_queued(tmp_path):
    storage = Storage((tmp_path / "lake").as_uri())
    blocked = tmp_path / "lake" / catalog.online_predictions("m", date(2026, 1, 7))
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a directory")  # the second day's partition cannot be written
    log = OnlineLog(storage, "m", "event_time", capacity_rows=10, flush_seconds=60)
    log.reserve(3)
    log.append(scored_rows([1, 2, 3], [date(2026, 1, 6), date(2026, 1, 7), date(2026, 1, 6)]), reserved=3)
    assert log.flush() == 2 and log.last_error and log.held_rows == 1
    blocked.unlink()
    assert log.flush() == 1 and log.last_error is None and log.held_rows == 0
    first = storage.read_table(catalog.online_predictions("m", date(2026, 1, 6)))
    second = storage.read_table(catalog.online_predictions("m", date(2026, 1, 7)))
    # each row once: the first day's rows were not written again by the second flush
    assert sorted(first.column("transaction_id").to_pylist()) == [1, 3]
    assert second.column("transaction_id").to_pylist() == [2]
