"""Pooling a small partition's scored rows with the recent ones for a drift verdict
(tasks/monitoring/drift_window.py): which partitions, where it stops, what the verdict says.
Readers are dicts of frames; no I/O. (tests/flows/test_monitor_small_partitions.py runs it on a lake.)"""

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferloop.core.dataset import DatasetSpec
from inferloop.core.periods import DAILY, Partitioning
from inferloop.tasks.model.evaluation import reference_profile
from inferloop.tasks.monitoring.drift import feature_drift
from inferloop.tasks.monitoring.drift_window import OTHER_VERSION, pool_scored_rows

DAY = date(2026, 3, 7)
MIN_ROWS = 200


def rows(n: int, key: date) -> pd.DataFrame:
    return pd.DataFrame({"partition": [key] * n, "score": np.linspace(0, 1, n)})


def reader(feed: dict[int, int | None]):
    """A reader of `feed` (partitions back from DAY -> rows, None: another version scored it;
    absent: nobody did) that records which partitions it was asked for."""
    asked = []

    def scored_rows(key: date) -> pd.DataFrame | None:
        asked.append(key)
        back = DAILY.apart(key, DAY)
        if back in feed and feed[back] is None:
            return OTHER_VERSION
        return rows(feed.get(back, 0), key)

    return scored_rows, asked


def pool(feed: dict[int, int | None], max_partitions: int = 7, partitioning: Partitioning = DAILY):
    scored_rows, asked = reader(feed)
    latest = rows(feed[0], DAY)
    return pool_scored_rows(latest, DAY, scored_rows, partitioning, MIN_ROWS, max_partitions), asked


def test_a_small_partition_is_pooled_back_until_the_pool_holds_enough_rows():
    pooled, asked = pool({0: 60, 1: 60, 2: 60, 3: 60, 4: 60, 5: 60})
    assert pooled.keys() == ["2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"]
    assert asked == [DAY - timedelta(days=n) for n in (1, 2, 3)]  # none older than needed
    assert len(pooled.rows) == 240 and pooled.rows["partition"].is_monotonic_increasing
    assert pooled.enough(MIN_ROWS)
    assert pooled.verdict(MIN_ROWS) == "measured on 4 partitions 2026-03-04..2026-03-07, 240 rows"


def test_a_partition_large_enough_on_its_own_is_measured_alone():
    scored_rows, asked = reader({})
    latest = rows(500, DAY)
    pooled = pool_scored_rows(latest, DAY, scored_rows, DAILY, MIN_ROWS, 7)
    assert asked == [] and pooled.rows is latest and pooled.keys() == ["2026-03-07"]
    assert pooled.verdict(MIN_ROWS) == "measured"


def test_pooling_stops_at_a_partition_another_version_scored():
    pooled, asked = pool({0: 60, 1: 60, 2: None, 3: 500})
    assert pooled.keys() == ["2026-03-06", "2026-03-07"] and pooled.stopped_at == date(2026, 3, 5)
    assert asked == [date(2026, 3, 6), date(2026, 3, 5)]  # never past the other version's
    assert not pooled.enough(MIN_ROWS)
    assert pooled.verdict(MIN_ROWS) == (
        "too few rows (120 < 200 in 2 partitions 2026-03-06..2026-03-07; "
        "2026-03-05 was scored by another version)"
    )


def test_pooling_stops_at_the_bound_and_a_gap_counts_toward_it():
    pooled, asked = pool({0: 60, 2: 60, 3: 500}, max_partitions=3)  # nobody scored 03-06
    assert asked == [date(2026, 3, 6), date(2026, 3, 5)]
    assert pooled.keys() == ["2026-03-05", "2026-03-07"] and len(pooled.rows) == 120
    assert pooled.verdict(MIN_ROWS) == (
        "too few rows (120 < 200 in 2 partitions 2026-03-05..2026-03-07; "
        "pooled back at most 3 partitions, INFERLOOP_DRIFT_POOL_PARTITIONS)"
    )


def test_without_pooling_the_verdict_is_the_count_alone():
    pooled, asked = pool({0: 60, 1: 500}, max_partitions=1)
    assert asked == [] and pooled.verdict(MIN_ROWS) == "too few rows (60 < 200)"


def test_a_bound_from_another_setting_is_named_even_when_it_stops_all_pooling():
    scored_rows, asked = reader({0: 60, 1: 500})
    kept = "INFERLOOP_RETAIN_FEATURES_DAYS"
    pooled = pool_scored_rows(rows(60, DAY), DAY, scored_rows, DAILY, MIN_ROWS, 1, kept)
    assert asked == [] and pooled.verdict(MIN_ROWS) == (
        "too few rows (60 < 200; pooled back at most 1 partitions, INFERLOOP_RETAIN_FEATURES_DAYS)"
    )


def test_an_empty_monitored_partition_says_which_partition_the_verdict_rests_on():
    pooled, _ = pool({0: 0, 1: 250})
    assert pooled.keys() == ["2026-03-06"]
    assert pooled.verdict(MIN_ROWS) == "measured on partition 2026-03-06, 250 rows"


def test_hourly_partitions_pool_hours_and_name_them_as_the_lake_does():
    hourly, hour = Partitioning("hour"), datetime(2026, 3, 7, 5)
    latest = rows(70, hour)
    pooled = pool_scored_rows(latest, hour, lambda key: rows(70, key), hourly, MIN_ROWS, 24)
    assert pooled.keys() == ["2026-03-07T03", "2026-03-07T04", "2026-03-07T05"]
    assert pooled.verdict(MIN_ROWS) == "measured on 3 partitions 2026-03-07T03..2026-03-07T05, 210 rows"


@given(
    feed=st.lists(st.one_of(st.none(), st.integers(0, 150)), min_size=1, max_size=12),
    max_partitions=st.integers(1, 10),
)
def test_a_pool_never_crosses_another_version_nor_the_bound_and_stops_once_enough(feed, max_partitions):
    by_back = dict(enumerate(feed))  # partitions past the list: nobody scored them
    by_back[0] = by_back[0] or 0  # the monitored partition is the measured version's
    pooled, asked = pool(by_back, max_partitions)

    def another_version(back: int) -> bool:
        return back in by_back and by_back[back] is None

    backs = [DAILY.apart(key, DAY) for key in pooled.partitions]
    assert all(0 <= b < max_partitions and not another_version(b) for b in backs)
    assert not any(another_version(DAILY.apart(key, DAY)) for key in asked[:-1])  # only the last stops
    assert len(pooled.rows) == sum(by_back.get(b) or 0 for b in backs)
    if pooled.stopped_at is None and not pooled.enough(MIN_ROWS):
        assert len(asked) == max_partitions - 1  # looked back as far as allowed
    if len(asked) > 0:  # asked for another partition only while short of rows
        assert len(pooled.rows) - (by_back.get(len(asked)) or 0) < MIN_ROWS


SPEC = DatasetSpec(
    name="toy",
    id_column="id",
    time_column="event_time",
    label={"column": "target"},
    features={"amount": "numeric", "channel": "categorical"},
)


def toy_partition(rows: int, seed: int, amount_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "pos", "atm", "phone"], rows, p=[0.5, 0.3, 0.15, 0.05])
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0 + amount_shift, 1.0, rows),
            # as parquet reads a dictionary column: categorical, with this partition's categories only
            "channel": pd.Categorical(channel),
        }
    )


@pytest.fixture(scope="module")
def profile() -> dict:
    frame = toy_partition(20_000, 0).assign(channel=lambda f: f["channel"].astype(str))
    return reference_profile(frame, np.random.default_rng(0).beta(1.0, 8.0, len(frame)), SPEC)


def test_pooled_small_partitions_measure_like_one_batch_of_their_rows(profile):
    # Ten 60-row partitions of a stable feed never flag once pooled into 240-row windows; the same
    # pools shifted by 0.8 in log amount (the synthetic covariate drift) always do.
    for shift, flagged in ((0.0, []), (0.8, ["amount"])):
        parts = [toy_partition(60, seed, shift) for seed in range(1, 11)]
        for first in range(len(parts) - 3):
            window = parts[first : first + 4]

            def scored_rows(key: date, window=window) -> pd.DataFrame:
                return window[3 - DAILY.apart(key, DAY)]

            pooled = pool_scored_rows(window[-1], DAY, scored_rows, DAILY, MIN_ROWS, 7)
            drift = feature_drift(pooled.rows, profile, SPEC, 0.2)
            assert [d.feature for d in drift if d.flagged] == flagged
            # categorical partitions with different categories pool as plain values: same PSI
            plain = pd.concat([p.astype({"channel": str}) for p in window], ignore_index=True)
            assert [d.psi for d in drift] == pytest.approx(
                [d.psi for d in feature_drift(plain, profile, SPEC, 0.2)]
            )
