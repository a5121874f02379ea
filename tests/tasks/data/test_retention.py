"""Lake retention (tasks/data/retention.py) on a file lake and on S3 (moto's server): a run deletes
exactly what the dry run listed, a rerun deletes nothing, and what is never pruned stays."""

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from inferloop.core import catalog
from inferloop.core.settings import LakeSettings, SettingsError, load_settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.retention import (
    ExpiredPartition,
    check_retention,
    delete_partitions,
    expired_partitions,
)

DATASET, MODEL, SUITE = "transactions", "fraud", "transactions_inference"
DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(6)]  # 2026-01-01 .. 2026-01-06
AS_OF = date(2026, 1, 7)


def parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"id": [1, 2], "score": [0.1, 0.9]}), sink)
    return sink.getvalue().to_pybytes()


PARQUET = parquet_bytes()


def write_lake(storage: Storage) -> None:
    """A small lake holding every kind of thing the catalog names, for every day (one PUT per
    file: what is in the files does not matter here, and S3 requests are slow)."""
    data = [catalog.holdout_predictions(MODEL, "1"), catalog.import_quarantine_file(DATASET, "ab" * 32)]
    data.append(catalog.replay_table(DATASET, DAYS[0], DAYS[-1]))
    reports = []
    for day in DAYS:
        data += [catalog.features_file(DATASET, day), catalog.labels_file(DATASET, day, day)]
        data += [catalog.predictions_file(MODEL, version, day) for version in ("1", "2")]
        reports += [catalog.predictions_manifest(MODEL, version, day) for version in ("1", "2")]
        data += [catalog.quarantine_file(SUITE, day), catalog.online_predictions_file(MODEL, day, "t1")]
        reports += [catalog.validation_report(SUITE, day), catalog.monitoring_report(DATASET, day)]
        reports.append(catalog.retrain_decisions_file(DATASET, day))
    for path in data:
        storage.write_bytes(path, PARQUET)
    for path in reports:
        storage.write_bytes(path, b"{}")


def files(storage: Storage) -> set[str]:
    selector = pafs.FileSelector(storage.path(""), recursive=True)
    root = len(storage.path("")) + 1
    return {
        info.path[root:]
        for info in storage.filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File
    }


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "file":
        lake = Storage((tmp_path / "lake").as_uri())
    else:
        lake = Storage(
            f"s3://{request.getfixturevalue('s3_bucket')}/lake", request.getfixturevalue("s3_endpoint")
        )
    write_lake(lake)
    return lake


RETAIN = LakeSettings(
    storage_uri="file:///unused",
    retain_features_days=3,  # keeps 2026-01-04 and later
    retain_predictions_days=2,  # keeps 2026-01-05 and later
    retain_quarantine_days=5,  # keeps 2026-01-02 and later
    retain_online_days=1,  # keeps 2026-01-06
)


def test_a_run_deletes_exactly_what_the_dry_run_listed_and_a_rerun_deletes_nothing(storage):
    before = files(storage)
    listed = expired_partitions(storage, RETAIN, DATASET, AS_OF)

    expected = (
        [ExpiredPartition("features", catalog.features(DATASET, d), d) for d in DAYS[:3]]
        + [ExpiredPartition("online", catalog.online_predictions(MODEL, d), d) for d in DAYS[:5]]
        + sorted(
            (
                ExpiredPartition("predictions", catalog.predictions(MODEL, v, d), d)
                for v in ("1", "2")
                for d in DAYS[:4]
            ),
            key=lambda p: p.path,
        )
        + [ExpiredPartition("quarantine", catalog.quarantine(SUITE, DAYS[0]), DAYS[0])]
    )
    assert listed == expected
    assert files(storage) == before  # listing deletes nothing

    deleted = delete_partitions(storage, listed)

    assert deleted == listed
    gone = before - files(storage)
    assert gone == {f for f in before if any(f.startswith(p.path + "/") for p in listed)}
    assert not files(storage) - before
    assert expired_partitions(storage, RETAIN, DATASET, AS_OF) == []  # a rerun deletes nothing
    assert delete_partitions(storage, listed) == listed  # and finishing a finished run is no error
    assert before - files(storage) == gone


def test_labels_reports_decisions_replays_and_holdout_scores_are_never_pruned(tmp_path):
    storage = Storage((tmp_path / "lake").as_uri())
    write_lake(storage)
    keep_one_day = LakeSettings(
        storage_uri="file:///unused",
        retain_features_days=1,
        retain_predictions_days=1,
        retain_quarantine_days=1,
        retain_online_days=1,
    )
    before = files(storage)
    delete_partitions(storage, expired_partitions(storage, keep_one_day, DATASET, date(2030, 1, 1)))
    left = files(storage)
    protected = {
        *(catalog.labels_file(DATASET, d, d) for d in DAYS),
        *(catalog.validation_report(SUITE, d) for d in DAYS),
        *(catalog.monitoring_report(DATASET, d) for d in DAYS),
        *(catalog.retrain_decisions_file(DATASET, d) for d in DAYS),
        catalog.holdout_predictions(MODEL, "1"),
        catalog.import_quarantine_file(DATASET, "ab" * 32),
        catalog.replay_table(DATASET, DAYS[0], DAYS[-1]),
    }
    assert protected <= before
    assert left == protected


def test_by_default_everything_is_kept_forever(tmp_path):
    lake = Storage((tmp_path / "lake").as_uri())
    write_lake(lake)
    assert expired_partitions(lake, LakeSettings(storage_uri=lake.root_uri), DATASET, date(2100, 1, 1)) == []


def test_a_partition_interrupted_half_way_is_uncommitted_and_the_rerun_finishes_it(tmp_path):
    lake = Storage((tmp_path / "lake").as_uri())
    write_lake(lake)
    partition = catalog.predictions(MODEL, "1", DAYS[0])
    lake.delete_file(catalog.manifest(partition))  # what a crash after the first step leaves
    listed = expired_partitions(lake, RETAIN, DATASET, AS_OF)
    assert ExpiredPartition("predictions", partition, DAYS[0]) in listed
    delete_partitions(lake, listed)
    assert not lake.exists(partition)


@pytest.mark.parametrize("value", ["-3", "0", "2.5", "a week"])
def test_a_retention_that_is_not_a_positive_number_of_days_fails_naming_the_knob(monkeypatch, value):
    monkeypatch.setenv("INFERLOOP_RETAIN_PREDICTIONS_DAYS", value)
    with pytest.raises(SettingsError, match="INFERLOOP_RETAIN_PREDICTIONS_DAYS"):
        load_settings()


@pytest.mark.parametrize("value", ["", "forever", "None"])
def test_forever_can_be_said_explicitly(monkeypatch, value):
    monkeypatch.setenv("INFERLOOP_RETAIN_ONLINE_DAYS", value)
    assert load_settings().lake.retain_online_days is None


def test_a_retention_shorter_than_the_training_window_is_refused_naming_both_knobs():
    settings = load_settings(retain_features_days=3, train_window_days=7)
    with pytest.raises(SettingsError) as refused:
        check_retention(settings)
    assert str(refused.value) == (
        "INFERLOOP_RETAIN_FEATURES_DAYS=3 is shorter than INFERLOOP_TRAIN_WINDOW_DAYS=7: training "
        "finds no data; keep at least 7 days (or unset it: keep forever)"
    )
    check_retention(load_settings(retain_features_days=7, retain_predictions_days=7))


def test_predictions_kept_shorter_than_the_performance_window_are_refused():
    with pytest.raises(SettingsError, match="INFERLOOP_PERFORMANCE_WINDOW_DAYS=7"):
        check_retention(load_settings(retain_predictions_days=2))


def test_features_kept_shorter_than_the_drift_pool_bound_are_accepted():
    # Pools stop where retention deleted (tests/flows/test_monitor_small_partitions.py).
    check_retention(load_settings(retain_features_days=8, drift_pool_partitions=30))
