"""Partition arithmetic (inferloop/core/periods.py): keys, shifts and counts per unit."""

from datetime import date, datetime, timedelta, timezone
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.periods import DAILY, Partitioning, PartitionRangeError, format_key, parse_key

UNITS = ["hour", "day", "week", "month"]
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
moments = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 12, 31))
units = st.sampled_from(UNITS)


@pytest.mark.parametrize(
    ("unit", "moment", "key"),
    [
        ("day", datetime(2026, 3, 18, 23, 59), date(2026, 3, 18)),
        ("week", date(2026, 3, 18), date(2026, 3, 16)),  # a Wednesday: its ISO Monday
        ("week", date(2026, 3, 16), date(2026, 3, 16)),
        ("week", date(2026, 3, 22), date(2026, 3, 16)),  # Sunday ends the week
        ("month", datetime(2026, 2, 28, 12), date(2026, 2, 1)),
    ],
)
def test_floor_names_the_partition_by_its_first_day(unit, moment, key):
    assert Partitioning(unit).floor(moment) == key


def test_months_shift_across_years_and_months_of_any_length():
    month = Partitioning("month")
    assert month.shift(date(2026, 1, 31), 1) == date(2026, 2, 1)
    assert month.shift(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert month.shift(date(2026, 11, 1), 14) == date(2028, 1, 1)
    assert month.keys(date(2025, 11, 20), date(2026, 2, 3)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]


def test_daily_arithmetic_is_the_calendar():
    assert DAILY.keys(date(2026, 1, 30), date(2026, 2, 1)) == [
        date(2026, 1, 30),
        date(2026, 1, 31),
        date(2026, 2, 1),
    ]
    assert DAILY.shift(date(2026, 3, 1), -1) == date(2026, 2, 28)


def test_a_reversed_range_is_an_error_the_cli_prints_without_a_traceback():
    with pytest.raises(
        PartitionRangeError, match="2026-02-01 is after 2026-01-30; give the earlier day first"
    ):
        DAILY.keys(date(2026, 2, 1), date(2026, 1, 30))
    with pytest.raises(InferloopError, match="give the earlier month first"):
        Partitioning("month").keys(date(2026, 2, 1), date(2026, 1, 30))


def test_partition_bounds_cover_the_period():
    month = Partitioning("month")
    assert month.start(date(2024, 2, 10)) == datetime(2024, 2, 1)
    assert month.end(date(2024, 2, 10)) == datetime(2024, 3, 1)
    assert Partitioning("week").end(date(2026, 3, 18)) == datetime(2026, 3, 23)


@pytest.mark.parametrize("unit", UNITS)
def test_vectorised_keys_agree_with_floor(unit):
    times = pd.Series(pd.to_datetime(["2026-01-01 00:00", "2026-03-18 13:30", "2026-12-31 23:59"]))
    partitioning = Partitioning(unit)
    assert partitioning.keys_of(times).tolist() == [partitioning.floor(t) for t in times]
    aware = times.dt.tz_localize("UTC")
    assert partitioning.keys_of(aware).tolist() == [partitioning.floor(t) for t in times]


@given(units, dates, st.integers(-400, 400))
def test_a_shift_moves_by_exactly_that_many_partitions(unit, day, n):
    partitioning = Partitioning(unit)
    shifted = partitioning.shift(day, n)
    assert partitioning.floor(shifted) == shifted
    assert partitioning.apart(day, shifted) == n
    assert partitioning.shift(shifted, -n) == partitioning.floor(day)


@given(units, moments, st.integers(0, 300))
def test_keys_are_consecutive_and_hold_both_ends(unit, first, n):
    partitioning = Partitioning(unit)
    last = partitioning.shift(first, n)
    keys = partitioning.keys(first, last)
    assert keys[0] == partitioning.floor(first) and keys[-1] == last and len(keys) == n + 1
    assert all(partitioning.shift(x, 1) == y for x, y in pairwise(keys))


@given(units, moments)
def test_every_moment_falls_inside_its_partition(unit, moment):
    partitioning = Partitioning(unit)
    assert partitioning.start(moment) <= moment < partitioning.end(moment)
    assert partitioning.floor(partitioning.start(moment)) == partitioning.floor(moment)


@given(units, moments)
def test_a_key_reads_back_from_its_path_and_report_spellings(unit, moment):
    key = Partitioning(unit).floor(moment)
    assert parse_key(format_key(key)) == key == parse_key(key.isoformat()) == parse_key(str(key))
    assert (
        ":" not in catalog.partition_name(key) and catalog.partition_day(catalog.partition_name(key)) == key
    )


def test_an_hour_is_a_naive_utc_datetime_spelt_without_a_colon():
    hour = Partitioning("hour")
    key = hour.floor(datetime(2026, 12, 3, 9, 45, tzinfo=timezone(timedelta(hours=2))))
    assert key == datetime(2026, 12, 3, 7) and key.tzinfo is None
    assert hour.floor(date(2026, 12, 3)) == datetime(2026, 12, 3)
    assert catalog.partition_name(key) == "date=2026-12-03T07"
    assert format_key(np.datetime64("2026-12-03T07:00:00")) == "2026-12-03T07"  # a pandas column's value
    assert hour.keys(datetime(2026, 12, 3, 22, 10), datetime(2026, 12, 4, 1)) == [
        datetime(2026, 12, 3, 22),
        datetime(2026, 12, 3, 23),
        datetime(2026, 12, 4, 0),
        datetime(2026, 12, 4, 1),
    ]
    times = pd.Series(pd.to_datetime(["2026-12-03 07:59:59", "2026-12-03 08:00:00"]))
    assert hour.keys_of(times).tolist() == [datetime(2026, 12, 3, 7), datetime(2026, 12, 3, 8)]
