"""Reading the online endpoint's rows for monitoring: one row per id (a client's retry counts
once, with its latest score), the version measured, breaches named by their source.
(tests/flows/test_monitor_online.py runs the monitor flow on rows the real endpoint scored.)"""

from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa

from inferloop.core import catalog
from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.monitoring.online import measure_online, online_named, online_scorer, read_online_rows

DAY = date(2026, 1, 6)


def scored(ids: list[int], scores: list[float], version: str, hour: int) -> pa.Table:
    return pa.table(
        {
            "transaction_id": pa.array(ids, pa.int64()),
            "score": scores,
            "model_version": [version] * len(ids),
            "scored_at": pa.array(
                [datetime(2026, 1, 6, hour, tzinfo=UTC)] * len(ids), pa.timestamp("us", tz="UTC")
            ),
        }
    )


def test_an_id_scored_twice_counts_once_with_its_latest_score(tmp_path):
    storage, spec = Storage((tmp_path / "lake").as_uri()), load_settings().dataset
    # the later flush first in name order: what counts is when a row was scored
    storage.write_table(catalog.online_predictions_file("m", DAY, "a"), scored([1, 2], [0.9, 0.8], "4", 12))
    storage.write_table(catalog.online_predictions_file("m", DAY, "b"), scored([2, 3], [0.1, 0.2], "3", 9))
    rows = read_online_rows(storage, spec, "m", DAY, ["score"]).set_index("transaction_id")
    assert rows["score"].to_dict() == {1: 0.9, 2: 0.8, 3: 0.2}
    assert read_online_rows(storage, spec, "m", date(2026, 1, 7), ["score"]).empty


def test_the_champions_rows_are_measured_when_it_served_any_else_the_latest_versions():
    champion = ModelVersionRef("m", "9", "run")
    rows = scored([1, 2], [0.5, 0.5], "10", 1).to_pandas()
    assert online_scorer(rows, champion) == "10"  # numerically latest, not "9" > "10"
    rows.loc[0, "model_version"] = "9"
    assert online_scorer(rows, champion) == "9"


def test_online_breaches_are_named_by_their_source():
    assert online_named(
        ["drift: amount PSI 0.300 > 0.2", "performance: roc_auc 0.51 below the floor 0.6"]
    ) == [
        "drift (online): amount PSI 0.300 > 0.2",
        "performance (online): roc_auc 0.51 below the floor 0.6",
    ]


def test_a_small_online_partition_is_pooled_back_but_never_into_another_versions_rows(tmp_path):
    settings, storage = load_settings(), Storage((tmp_path / "lake").as_uri())
    feed = GeneratorConfig(days=3, rows_per_day=50)
    for index, version in enumerate(["3", "4", "4"]):  # v4 took over on the second day
        features = generate_day(feed, index)[0]
        served = features.assign(
            score=0.1, model_version=version, scored_at=pd.Timestamp("2026-01-01", tz="UTC")
        )
        storage.write_table(
            catalog.online_predictions_file("m", feed.day(index), "a"),
            pa.Table.from_pandas(served, preserve_index=False),
        )
    champion, day = ModelVersionRef("m", "4", "run"), feed.day(2)

    online = measure_online(storage, settings, champion, day, feed.day(1), [feed.day(1)])

    assert (online.rows_scored, online.scored_by, online.drift_rows) == (50, "4", 100)
    assert online.drift_partitions == [feed.day(1).isoformat(), day.isoformat()]
    assert online.drift_verdict == (
        f"too few rows (100 < 200 in 2 partitions {feed.day(1)}..{day}; "
        f"{feed.day(0)} was scored by another version)"
    )


def test_an_online_pool_reaches_no_further_back_than_online_rows_are_kept_and_says_so(tmp_path):
    settings = load_settings(retain_online_days=2)
    storage = Storage((tmp_path / "lake").as_uri())
    feed = GeneratorConfig(days=4, rows_per_day=50)
    for index in range(feed.days):
        served = generate_day(feed, index)[0].assign(
            score=0.1, model_version="4", scored_at=pd.Timestamp("2026-01-01", tz="UTC")
        )
        storage.write_table(
            catalog.online_predictions_file("m", feed.day(index), "a"),
            pa.Table.from_pandas(served, preserve_index=False),
        )
    day = feed.day(3)

    online = measure_online(storage, settings, ModelVersionRef("m", "4", "run"), day, day, [day])

    assert online.drift_partitions == [feed.day(2).isoformat(), day.isoformat()]
    assert online.drift_verdict == (
        f"too few rows (100 < 200 in 2 partitions {feed.day(2)}..{day}; pooled back at most 2 "
        "partitions, INFERLOOP_RETAIN_ONLINE_DAYS)"
    )
