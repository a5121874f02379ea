"""Partitions of a feed's time: an hour, a day, an ISO week or a calendar month, as the dataset
spec says.

A partition is named by its key: the `date` of its first day for a day, week (its ISO Monday)
or month (the 1st), so a lake path `date=YYYY-MM-DD` means the same for those units and a daily
lake is unchanged; for an hour, the naive UTC `datetime` at the hour (a `date` too), spelt
`2026-12-03T07` in paths (no colon: safe in file and S3 names). Every window, delay, cooldown
and count in inferloop is a number of partitions: `train_window_days: 7` is seven months on a
monthly feed. Any time names the partition it falls in (`floor`), so a user may give
2026-03-15 for March.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pandas as pd

from inferloop.core.errors import InferloopError

PartitionUnit = Literal["hour", "day", "week", "month"]
# What a flow takes for a partition: a date, or a datetime for an hourly feed (in this order, so
# a text date stays a date).
PartitionKey = date | datetime
HOUR = timedelta(hours=1)


def format_key(key: date) -> str:
    """A key as lake paths spell it: 2026-03-01, or 2026-03-01T07 for an hour."""
    if not isinstance(key, date):  # a numpy datetime64 from a pandas column
        key = pd.Timestamp(key).to_pydatetime()
    return key.strftime("%Y-%m-%dT%H") if isinstance(key, datetime) else key.isoformat()


def parse_key(text: str) -> date:
    """A key from its spelling in a path or a report (`format_key`, `isoformat` or `str`)."""
    return date.fromisoformat(text) if len(text) == len("2026-03-01") else datetime.fromisoformat(text)


class PartitionRangeError(InferloopError, ValueError):
    """A range of partitions whose first is after its last."""


@dataclass(frozen=True)
class Partitioning:
    """Arithmetic on partition keys of one unit; every method accepts any date in a partition."""

    unit: PartitionUnit = "day"

    def floor(self, moment: date) -> date:
        """The key of the partition `moment` (a date, or a datetime: naive UTC or aware) falls in."""
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        if self.unit == "hour":
            hour = moment.hour if isinstance(moment, datetime) else 0
            return datetime(moment.year, moment.month, moment.day, hour)
        day = moment.date() if isinstance(moment, datetime) else moment
        if self.unit == "week":
            return day - timedelta(days=day.weekday())
        if self.unit == "month":
            return day.replace(day=1)
        return day

    def shift(self, key: date, partitions: int) -> date:
        """The key `partitions` partitions after `key`'s (before it when negative)."""
        key = self.floor(key)
        if self.unit == "month":
            months = key.year * 12 + key.month - 1 + partitions
            return date(months // 12, months % 12 + 1, 1)
        if self.unit == "hour":
            return key + partitions * HOUR
        return key + timedelta(days=partitions * (7 if self.unit == "week" else 1))

    def apart(self, earlier: date, later: date) -> int:
        """How many partitions `later`'s is after `earlier`'s (negative when it is before)."""
        earlier, later = self.floor(earlier), self.floor(later)
        if self.unit == "month":
            return (later.year - earlier.year) * 12 + later.month - earlier.month
        if self.unit == "hour":
            return (later - earlier) // HOUR
        return (later - earlier).days // (7 if self.unit == "week" else 1)

    def keys(self, first: date, last: date) -> list[date]:
        """Every partition key from `first`'s to `last`'s, both included."""
        count = self.apart(first, last)
        if count < 0:
            raise PartitionRangeError(
                f"Date range is empty: {first} is after {last}; give the earlier "
                f"{self.unit} first (--from before --to)"
            )
        return [self.shift(first, i) for i in range(count + 1)]

    def start(self, key: date) -> datetime:
        """The first instant of `key`'s partition (naive, UTC like the lake's times)."""
        key = self.floor(key)
        return key if isinstance(key, datetime) else datetime.combine(key, datetime.min.time())

    def end(self, key: date) -> datetime:
        """The first instant after `key`'s partition."""
        return self.start(self.shift(key, 1))

    def floor_times(self, times: pd.Series) -> pd.Series:
        """The first instant of each time's partition (datetime64, like `times`): vectorised
        `floor`, for grouping or splitting rows by partition."""
        times = pd.to_datetime(times)
        if times.dt.tz is not None:  # keys are naive UTC
            times = times.dt.tz_convert("UTC").dt.tz_localize(None)
        if self.unit == "hour":
            return times.dt.floor("h")
        days = times.dt.normalize()
        if self.unit == "week":
            return days - pd.to_timedelta(days.dt.dayofweek, unit="D")
        if self.unit == "month":
            return days - pd.to_timedelta(days.dt.day - 1, unit="D")
        return days

    def keys_of(self, times: pd.Series) -> pd.Series:
        """The partition key of each time: a `date`, a `pd.Timestamp` for an hour."""
        starts = self.floor_times(times)
        return starts if self.unit == "hour" else starts.dt.date


DAILY = Partitioning("day")
