"""The monitoring history chart (tasks/monitoring/history_chart.py): drawn from the saved reports
of the days shown, into the day's monitoring folder."""

from datetime import date, timedelta

import pytest

from inferloop.core import catalog
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.daily_report import MonitoringReport, save_report
from inferloop.tasks.monitoring.drift import FeatureDrift
from inferloop.tasks.monitoring.history_chart import history_chart, save_history_chart
from inferloop.tasks.monitoring.performance import PerformanceSnapshot

START = date(2026, 3, 1)


def report(n: int, rolling: float | None) -> MonitoringReport:
    day = (START + timedelta(days=n)).isoformat()
    return MonitoringReport(
        dataset="transactions",
        model_name="fraud",
        model_version="2",
        day=day,
        drift=[FeatureDrift("amount", "numeric", 500, psi=0.05 * n)],
        rolling_performance=None
        if rolling is None
        else PerformanceSnapshot("2", day, day, 500, {"roc_auc": rolling}),
        validation_metric=0.85,
    )


@pytest.fixture
def history() -> list[MonitoringReport]:
    # The first day has no labelled predictions yet, the second nothing drifted: gaps are drawn.
    return [report(0, None), report(1, 0.84), report(2, 0.80), report(3, 0.71)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_chart_is_a_png_of_the_history(history, settings):
    assert png_size(history_chart(history, settings.monitoring)) == (640, 400)  # 8 x 5 inches at 80 dpi
    assert history_chart(history, settings.monitoring) != history_chart(history[:-1], settings.monitoring)


def test_the_saved_chart_shows_the_last_days_up_to_the_day(history, settings, tmp_path):
    storage = Storage((tmp_path / "lake").as_uri())
    for saved in history:
        save_report(storage, saved)
    day = date.fromisoformat(history[2].day)

    uri = save_history_chart(storage, settings, day, days_shown=2)
    path = catalog.history_chart_file("transactions", day)
    assert uri == storage.uri(path)
    # The two days up to `day`: not the first day, not the day after.
    assert storage.read_bytes(path) == history_chart(history[1:3], settings.monitoring)
