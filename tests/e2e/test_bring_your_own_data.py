"""A dataset that is not the synthetic one runs the whole loop with only its spec: import ->
gate -> train -> promote -> score -> monitor. Default run: an Elec2-shaped file built here; the
real Elec2 file only when asked for (make test-real-data)."""

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.importing import import_source
from tests.fixtures.elec2 import BAD_ROWS, ROWS_PER_DAY, write_elec2_like_csv
from tests.fixtures.real_data import REAL_ELEC2, needs_real_elec2

pytestmark = pytest.mark.slow
FIRST_DAY = date(1996, 5, 7)


@pytest.fixture
def elec2_env(prefect_harness, mlflow_server, workdir, monkeypatch):
    """The elec2 spec, its own model on the shared MLflow server; the loop's settings for a feed
    of 48 rows a day (30-day windows, accuracy as the monitored metric)."""
    for name, value in {
        "TRACKING_URI": mlflow_server,
        "MODEL_NAME": f"elec2-{uuid.uuid4().hex[:8]}",
        "DATASET_SPEC": "datasets/elec2.yaml",
        "GX_SCOPE": "schema",
        "TRAIN_WINDOW_DAYS": "30",
        "HOLDOUT_DAYS": "2",
        "MONITOR_METRIC": "accuracy",
        "RETRAIN_COOLDOWN_DAYS": "5",
    }.items():
        monkeypatch.setenv(f"INFERLOOP_{name}", value)
    return load_settings()


def import_file(settings, path: Path):
    return import_source.fn(lake_storage(settings.lake), settings.dataset, str(path))


def test_elec2_shaped_feed_runs_the_loop_with_only_its_spec(elec2_env, tmp_path):
    from inferloop.flows.replay import replay

    days = 40
    imported = import_file(elec2_env, write_elec2_like_csv(tmp_path / "e.csv", days=days, learnable=True))
    assert imported.rows_in == days * ROWS_PER_DAY and imported.rows_quarantined == len(BAD_ROWS)
    start = FIRST_DAY + timedelta(days=32)
    summary = replay(start=start, end=FIRST_DAY + timedelta(days=days - 1))
    assert [d.rows_scored for d in summary.days] == [ROWS_PER_DAY] * len(summary.days)
    assert summary.days[0].champion_version == "1"  # trained from the spec's columns alone
    assert summary.loop["accuracy"] > 0.75 and summary.loop["rows"] >= ROWS_PER_DAY * (len(summary.days) - 1)
    assert all(d.labelled_rows == ROWS_PER_DAY for d in summary.days[1:])


@needs_real_elec2
def test_real_elec2_loop_beats_the_static_model(elec2_env):
    """Four months of the real data replayed day by day, across the day the Victoria columns stop
    being constant placeholders (the full history: docs/benchmarks.md)."""
    from inferloop.flows.replay import replay

    imported = import_file(elec2_env, REAL_ELEC2)
    assert imported.rows_in == 45_312 and imported.rows_written + imported.rows_quarantined == 45_312
    summary = replay(start=date(1997, 4, 1), end=date(1997, 7, 31))
    # Measured: loop 0.770 vs static 0.750 accuracy, 2 retrains (deterministic: same data, seeds).
    assert summary.loop["accuracy"] > summary.static["accuracy"] + 0.01, (summary.loop, summary.static)
    assert 0 < summary.retrains <= len(summary.days) / 5
