"""The demo flow: generate the synthetic feed, then replay it from the first day after the first
training window; with no champion yet, replay trains it on the days just before."""

from datetime import timedelta

from mlflow import MlflowClient

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.demo import loop_demo
from inferloop.tasks.data.synthetic import GeneratorConfig
from tests.flows.conftest import ROWS_PER_DAY, aliases


def test_a_tiny_loop_runs_end_to_end(lake, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "3")
    summary = loop_demo(days=6, rows_per_day=ROWS_PER_DAY, scenario="stable")

    settings = load_settings()
    storage = lake_storage(settings.lake)
    days = [GeneratorConfig().day(i) for i in range(6)]
    assert storage.list_partitions(catalog.features_table(settings.dataset.name)) == days
    # The first scored day leaves room for a training window and the label delay before it.
    assert (summary.start, summary.end) == (days[4].isoformat(), days[5].isoformat())
    assert [(d.day, d.champion_version) for d in summary.days] == [
        (days[4].isoformat(), "1"),
        (days[5].isoformat(), "1"),
    ]
    assert aliases(lake) == {"champion": "1"}
    client = MlflowClient(lake)
    params = client.get_run(client.get_model_version(settings.registry.model_name, "1").run_id).data.params
    assert (params["window_start"], params["window_end"]) == (str(days[0]), str(days[0] + timedelta(days=2)))
    assert summary.loop["rows"] == sum(d.rows_scored for d in summary.days) > 0
    assert storage.exists(catalog.replay_table(settings.dataset.name, days[4], days[5]))
