"""Which scored rows a drift verdict rests on: the monitored partition, pooled with the ones before
it when it is small.

PSI on a few dozen rows is noise (an empty bin alone scores about 0.3), so a partition with fewer
than `min_drift_rows` scored rows gets no verdict of its own. On a feed of small partitions (48
rows a day, tens an hour) that would leave drift never measured, so the verdict rests instead on
the most recent partitions scored by the same version, pooled back from the monitored one:
- newest first, until the pool holds `min_drift_rows` rows (no more history than it needs);
- over at most `drift_pool_partitions` partitions, the monitored one included, so a verdict stays
  about recent traffic: a gap, or a partition nobody scored, counts toward that bound and adds
  nothing;
- never into a partition another version scored: drift is measured against the scoring
  version's reference profile, and another model's scores say nothing about this one's.
The same rule serves the batch predictions and the online rows (each with its own reader).

Consecutive partitions' pools overlap, as consecutive rolling performance windows do: the retrain
policy's `confirm_days` still counts consecutive reports in breach, which then confirms that the
breach persisted while new partitions arrived (each pool holds the partition it reports on), not
that it was seen on disjoint rows. A one-partition blip is diluted by its pool: on the synthetic
feed's covariate shift, pools of four 60-row days scored `amount` PSI 0.06 with one shifted day,
0.20 with two, 0.46 with three (threshold 0.2), and stable pools at most 0.12.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from inferloop.core.periods import Partitioning, format_key

# What a reader of one partition's scored rows returns for a partition another version scored.
OTHER_VERSION = None


@dataclass(frozen=True)
class PooledRows:
    """Scored rows of one version over consecutive recent partitions, the monitored one last."""

    day: date  # the monitored partition
    rows: pd.DataFrame
    partitions: tuple[date, ...]  # those holding rows, oldest first
    bound: int  # most partitions the pool could span
    stopped_at: date | None = None  # the partition another version scored, where pooling stopped
    bound_knob: str = "INFERLOOP_DRIFT_POOL_PARTITIONS"  # the setting the bound comes from

    def enough(self, min_rows: int) -> bool:
        return len(self.rows) >= min_rows

    def keys(self) -> list[str]:
        return [format_key(key) for key in self.partitions]

    def verdict(self, min_rows: int) -> str:
        """ "measured" on the monitored partition alone; else what the verdict rests on, or why
        there is none: "measured on 5 partitions 1996-06-03..1996-06-07, 240 rows"."""
        rows, keys = len(self.rows), self.keys()
        pooled = self.partitions not in ((), (self.day,))
        if not pooled:
            span = ""
        elif len(keys) > 1:
            span = f"{len(keys)} partitions {keys[0]}..{keys[-1]}"
        else:
            span = f"partition {keys[0]}"
        if self.enough(min_rows):
            return f"measured on {span}, {rows} rows" if span else "measured"
        counted = f"{rows} < {min_rows}" + (f" in {span}" if span else "")
        if self.stopped_at is not None:
            counted += f"; {format_key(self.stopped_at)} was scored by another version"
        elif self.bound > 1 or self.bound_knob != PooledRows.bound_knob:
            counted += f"; pooled back at most {self.bound} partitions, {self.bound_knob}"
        return f"too few rows ({counted})"


def pool_bound(max_partitions: int, kept: int | None, kept_knob: str) -> tuple[int, str]:
    """How far a pool may reach back, and the setting that says so: `drift_pool_partitions`, or
    the table's retention (`kept` partitions, by `kept_knob`) when that is shorter, so that a
    verdict cut short by retention names it."""
    if kept is not None and kept < max_partitions:
        return kept, kept_knob
    return max_partitions, PooledRows.bound_knob


def pool_scored_rows(
    latest: pd.DataFrame,
    day: date,
    scored_rows: Callable[[date], pd.DataFrame | None],
    partitioning: Partitioning,
    min_rows: int,
    max_partitions: int,
    bound_knob: str = PooledRows.bound_knob,
) -> PooledRows:
    """`latest` (the scored rows of `day`), pooled with those of the partitions before `day` while
    it holds fewer than `min_rows` rows, over at most `max_partitions` partitions in all.
    `scored_rows(key)` returns a partition's rows scored by the version being measured: empty
    when nobody scored it, `OTHER_VERSION` (None) when another version did (pooling stops)."""
    frames, stopped_at = {day: latest}, None
    for back in range(1, max_partitions):
        if sum(len(frame) for frame in frames.values()) >= min_rows:
            break
        key = partitioning.shift(day, -back)
        rows = scored_rows(key)
        if rows is OTHER_VERSION:
            stopped_at = key
            break
        frames[key] = rows
    held = {key: frame for key, frame in sorted(frames.items()) if len(frame)}
    # One partition is used as it is: no copy of a partition large enough on its own.
    rows = pd.concat(held.values(), ignore_index=True) if len(held) > 1 else next(iter(held.values()), latest)
    return PooledRows(day, rows, tuple(held), max_partitions, stopped_at, bound_knob)
