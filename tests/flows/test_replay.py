"""The replay flow: each day as if live (score with the champion of the moment, monitor, retrain
when the policy says so); returns one row per day and the loop's prequential metrics beside those
of the first champion kept forever, and saves the day-by-day table.
(tests/e2e/test_monitoring.py replays whole scenarios, with retrains.)"""

import pytest

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.replay import replay
from tests.flows.conftest import DAYS, ROWS_PER_DAY, register


def test_replay_returns_a_row_per_day_and_prequential_metrics(pool, lake, feed):
    champion = register(lake, pool.before, "champion")
    start, end = DAYS[5], DAYS[6]
    summary = replay(start=start, end=end)

    assert [(d.day, d.champion_version, d.refused) for d in summary.days] == [
        (start.isoformat(), champion, False),
        (end.isoformat(), champion, False),
    ]
    first, second = summary.days
    assert all(d.rows_scored + d.rows_quarantined == ROWS_PER_DAY for d in summary.days)
    # Labels come a day late: the first day's own predictions are measured on the second.
    assert (first.labelled_rows, first.roc_auc) == (0, None)
    assert second.labelled_rows == first.rows_scored and second.roc_auc is not None
    assert (summary.retrains, summary.promotions) == (0, 0)
    # Prequential: every scored row whose label has arrived, once; the champion never changed,
    # so the static baseline (scored on exactly those rows) measures the same.
    assert summary.loop["rows"] == first.rows_scored + second.rows_scored
    assert summary.static == pytest.approx(summary.loop)

    settings = load_settings()
    storage = lake_storage(settings.lake)
    table = catalog.replay_table(settings.dataset.name, start, end)
    assert summary.table_uri == storage.uri(table)
    saved = storage.read_table(table).to_pandas()
    assert saved["day"].tolist() == [start.isoformat(), end.isoformat()]
    assert saved["rows_scored"].tolist() == [first.rows_scored, second.rows_scored]
