"""The lake-retention flow (flows/lake_retention.py): the dry run lists, the run deletes exactly
that, a rerun deletes nothing; the run's artifact shows the same table."""

from datetime import UTC, date, datetime

from prefect import get_client

from inferloop.core import catalog
from inferloop.core.storage import Storage
from inferloop.flows.lake_retention import lake_retention
from tests.tasks.data.test_retention import AS_OF, DATASET, DAYS, MODEL, files, write_lake

KEEP = {
    "retain_features_days": 7,
    "retain_predictions_days": 7,
    "retain_quarantine_days": 2,
    "retain_online_days": 2,
}


def test_dry_run_lists_the_run_deletes_exactly_that_and_a_rerun_nothing(prefect_harness, workdir):
    lake = Storage((workdir / "lake").as_uri())
    write_lake(lake)
    before = files(lake)

    dry = lake_retention(as_of=AS_OF, dry_run=True, overrides=KEEP)
    assert files(lake) == before
    assert {p.table for p in dry.partitions} == {"quarantine", "online"}
    assert catalog.online_predictions(MODEL, DAYS[0]) in [p.path for p in dry.partitions]
    assert dry.kept_days == {"features": 7, "predictions": 7, "quarantine": 2, "online": 2}

    run = lake_retention(as_of=AS_OF, overrides=KEEP)
    assert run.partitions == dry.partitions and not run.dry_run
    assert before - files(lake) == {
        f for f in before if any(f.startswith(p.path + "/") for p in dry.partitions)
    }
    assert all(lake.exists(catalog.features(DATASET, day)) for day in DAYS)
    assert lake_retention(as_of=AS_OF, overrides=KEEP).partitions == []

    scheduled = lake_retention(dry_run=True, overrides=KEEP)  # as the daily deployment runs it
    assert type(scheduled.as_of) is date and scheduled.as_of == datetime.now(UTC).date()

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    shown = {a.key: a for a in artifact}["lake-retention"]
    assert "would delete 22 partition(s) (dry run)" in shown.data  # the latest run's table
