"""Feeds partitioned by month and by hour run the loop end to end (import -> gate -> train ->
score -> monitor -> replay with its policy comparison), every window and delay counted in
partitions of the spec's unit."""

import uuid
from datetime import date, datetime

import pytest
import yaml

from inferloop.core import catalog
from inferloop.core.settings import REPO_ROOT, load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.importing import import_source
from inferloop.tasks.report_tables import comparison_table, import_table
from tests.fixtures.elec2 import BAD_ROWS, ROWS_PER_DAY, write_elec2_like_csv

pytestmark = pytest.mark.slow
SOURCE_BLOCKS = 122  # of 48 source rows: 5,856 rows, one every 3 hours from 1996-05-07 to 1998-05-07


def partitioned_elec2(workdir, mlflow_server, monkeypatch, unit: str, step: str):
    """The elec2 spec (and its committed suites) partitioned by `unit`, a row every `step`;
    windows, delay and cooldown in partitions."""
    raw = yaml.safe_load((REPO_ROOT / "datasets" / "elec2.yaml").read_text())
    raw["partition"] = unit
    raw["time_from_row_order"]["step"] = step
    spec = workdir / f"elec2_{unit}.yaml"
    spec.write_text(yaml.safe_dump(raw))
    for name, value in {
        "TRACKING_URI": mlflow_server,
        "MODEL_NAME": f"elec2-{unit}-{uuid.uuid4().hex[:8]}",
        "DATASET_SPEC": str(spec),
        "GX_SCOPE": "schema",
        "TRAIN_WINDOW_DAYS": "6",
        "HOLDOUT_DAYS": "1",
        "MONITOR_METRIC": "accuracy",
        "RETRAIN_COOLDOWN_DAYS": "2",
        "BASELINE_EVERY": "[1, 3]",
        "OPTIMISED_ARTIFACT": "false",
    }.items():
        monkeypatch.setenv(f"INFERLOOP_{name}", value)
    return load_settings()


@pytest.fixture
def monthly_env(prefect_harness, mlflow_server, workdir, monkeypatch):
    """A row every 3 hours: about 240 a month."""
    return partitioned_elec2(workdir, mlflow_server, monkeypatch, "month", "3h")


@pytest.fixture
def hourly_env(prefect_harness, mlflow_server, workdir, monkeypatch):
    """A row every minute: 60 an hour."""
    return partitioned_elec2(workdir, mlflow_server, monkeypatch, "hour", "1min")


def test_a_monthly_feed_is_imported_by_month_and_replayed_month_by_month(monthly_env, tmp_path):
    from inferloop.flows.replay import replay

    settings, spec = monthly_env, monthly_env.dataset
    storage = lake_storage(settings.lake)
    source = write_elec2_like_csv(tmp_path / "monthly.csv", days=SOURCE_BLOCKS, learnable=True)
    imported = import_source.fn(storage, spec, str(source))

    months = storage.list_partitions(catalog.features_table(spec.name))
    assert months[0] == date(1996, 5, 1) and months[-1] == date(1998, 5, 1) and len(months) == 25
    assert (imported.days, imported.first_day, imported.last_day) == (25, months[0], months[-1])
    assert imported.rows_written == SOURCE_BLOCKS * ROWS_PER_DAY - len(BAD_ROWS)
    assert "(25 months, 1996-05-01..1998-05-01)" in import_table(imported).title
    # A month's labels arrive with the next month (delay_days: 1 counts partitions).
    assert storage.exists(catalog.labels_file(spec.name, date(1997, 7, 1), date(1997, 6, 1)))

    # Any day of a month names it: the replay scores June .. November 1997.
    summary = replay(start=date(1997, 6, 15), end=date(1997, 11, 30))

    replayed = [d.day for d in summary.days]
    assert replayed == [spec.partitioning.shift(date(1997, 6, 1), i).isoformat() for i in range(6)]
    month_rows = [len(storage.read_table(catalog.imported_features_file(spec.name, m))) for m in months]
    scored = {d.day: d.rows_scored + d.rows_quarantined for d in summary.days}
    assert scored == {
        m.isoformat(): n for m, n in zip(months, month_rows, strict=True) if m.isoformat() in scored
    }
    # The first month's predictions are measured when its labels arrive, a month later.
    assert summary.days[0].labelled_rows == 0
    assert summary.days[1].labelled_rows == summary.days[0].rows_scored
    assert summary.loop["accuracy"] > 0.75

    # The policy comparison counts partitions: a cron every month fits at months 1..5, every
    # three months at month 3.
    comparison = summary.comparison
    retrains = {p.policy: p.retrains for p in comparison.policies}
    assert retrains["retrain every partition"] == 5 and retrains["retrain every 3 partitions"] == 1
    assert comparison.partition == "month"
    assert "labels 1 month(s) late, models trained on 6 months" in comparison_table(comparison).title
    assert "months)" in comparison.verdict  # its bootstrap resamples whole months


def test_an_hourly_feed_is_imported_by_hour_and_replayed_hour_by_hour(hourly_env, tmp_path):
    from inferloop.flows.replay import replay

    settings, spec = hourly_env, hourly_env.dataset
    storage = lake_storage(settings.lake)
    source = write_elec2_like_csv(tmp_path / "hourly.csv", days=20, learnable=True)  # 960 rows: 16 hours
    imported = import_source.fn(storage, spec, str(source))

    hours = storage.list_partitions(catalog.features_table(spec.name))
    assert hours == [datetime(1996, 5, 7, h) for h in range(16)]
    assert (
        imported.days == 16
        and "(16 hours, 1996-05-07 00:00:00..1996-05-07 15:00:00)" in import_table(imported).title
    )
    # Hours are spelt without a colon in the lake (file and S3 names), labels an hour later.
    assert storage.exists("elec2/date=1996-05-07T05/part-import.parquet")
    assert storage.exists(catalog.labels_file(spec.name, datetime(1996, 5, 7, 6), datetime(1996, 5, 7, 5)))

    summary = replay(start=datetime(1996, 5, 7, 9, 30), end=datetime(1996, 5, 7, 14))

    assert [d.day for d in summary.days] == [f"1996-05-07T{h:02d}:00:00" for h in range(9, 15)]
    assert all(d.rows_scored + d.rows_quarantined == 60 for d in summary.days)
    assert summary.days[1].labelled_rows == summary.days[0].rows_scored
    retrains = {p.policy: p.retrains for p in summary.comparison.policies}
    assert retrains["retrain every partition"] == 5 and retrains["retrain every 3 partitions"] == 1
    assert "labels 1 hour(s) late, models trained on 6 hours" in comparison_table(summary.comparison).title
    assert storage.exists(
        catalog.replay_comparison_json(spec.name, datetime(1996, 5, 7, 9), datetime(1996, 5, 7, 14))
    )
