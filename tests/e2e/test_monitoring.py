"""The closed loop on the synthetic scenarios: score, monitor, retrain, promote, day by day
(real Prefect, a real MLflow server on SQLite, real GX)."""

import uuid
from datetime import timedelta

import numpy as np
import pytest

from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.monitoring.daily_report import load_history

pytestmark = pytest.mark.slow


@pytest.fixture
def loop(prefect_harness, mlflow_server, workdir, monkeypatch):
    """Write a scenario, then replay it from the first day after the first training window."""
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"fraud-monitor-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("INFERLOOP_GX_SCOPE", "schema")
    # One periodic baseline (a fit a week), not the default three, one of which fits a model every
    # day: these scenarios check the loop; the comparison has its own tests (tests/flows/test_replay.py,
    # tests/tasks/monitoring/test_policy_comparison.py).
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", "7")

    def run(config: GeneratorConfig):
        from inferloop.flows.replay import replay

        settings = load_settings()
        days = write_synthetic_feed.fn(lake_storage(settings.lake), settings.dataset, config)
        first = days[0] + timedelta(
            days=settings.training.train_window_days + settings.dataset.label.delay_days
        )
        return settings, days, replay(start=first, end=days[-1])

    return run


def test_concept_drift_is_detected_retrained_once_and_recovers(loop):
    from mlflow import MlflowClient

    config = GeneratorConfig(scenario="concept_drift", days=21, rows_per_day=5_000, change_day=11)
    settings, days, summary = loop(config)
    change = days[config.change_day]
    retrain_days = [d for d in summary.days if d.retrain.startswith("retrained")]
    assert len(retrain_days) == 1 and summary.promotions == 1, summary.days
    # Labels of the change day arrive the next day; the retrain follows within 2 days of them.
    labels_arrive = change + timedelta(days=settings.dataset.label.delay_days)
    assert 0 <= (np.datetime64(retrain_days[0].day) - np.datetime64(labels_arrive)).astype(int) <= 2
    assert len({d.champion_version for d in summary.days}) == 2, "the champion changed once"

    def mean_auc(rows):
        return np.mean([r.roc_auc for r in rows])

    before = [d for d in summary.days if d.roc_auc and d.day <= change.isoformat()]
    after = [d for d in summary.days if d.champion_version != summary.days[0].champion_version][-4:]
    assert mean_auc(after) >= mean_auc(before) - 0.03, (mean_auc(before), mean_auc(after))
    assert summary.loop["roc_auc"] > summary.static["roc_auc"] + 0.1

    # History in the MLflow monitoring experiment: one point per monitored day.
    client = MlflowClient(settings.registry.tracking_uri)
    experiment = client.get_experiment_by_name(settings.registry.monitoring_experiment_name)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`inferloop.model` = '{settings.registry.model_name}'",
    )
    history = [m for run in runs for m in client.get_metric_history(run.info.run_id, "rolling_roc_auc")]
    assert {m.step for m in history} <= {
        np.datetime64(d.day).astype(object).toordinal() for d in summary.days
    }
    assert len(history) >= len(summary.days) - 2


def test_stable_feed_triggers_no_retrain_and_the_monitor_flow_saves_its_report(loop):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from inferloop.flows.monitor import monitor

    settings, days, summary = loop(GeneratorConfig(scenario="stable", days=30, rows_per_day=2_000))
    assert summary.retrains == 0 and {d.champion_version for d in summary.days} == {"1"}
    assert not any(d.drifted for d in summary.days)

    # The monitor flow on its own, as the monitor-daily deployment runs it: report, chart, artifact.
    decision = monitor(day=days[-1])
    assert decision.action == "none"
    storage = lake_storage(settings.lake)
    chart = storage.read_bytes(f"monitoring/{settings.dataset.name}/date={days[-1]}/history.png")
    assert chart.startswith(b"\x89PNG")
    with get_client(sync_client=True) as client:
        drift = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monitoring-transactions-drift"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert drift and "amount" in str(drift[0].data)


def test_covariate_drift_flags_only_the_shifted_feature(loop):
    config = GeneratorConfig(scenario="covariate_drift", days=14, rows_per_day=2_000, change_day=10)
    settings, days, _summary = loop(config)
    reports = {
        r.day: r for r in load_history(lake_storage(settings.lake), settings.dataset.name, days[0], days[-1])
    }
    for day in days[8:]:
        expected = ["amount"] if day >= days[config.change_day] else []
        assert reports[day.isoformat()].drifted_features == expected, day


def test_broken_feed_is_refused_not_retrained(loop):
    config = GeneratorConfig(scenario="quality_faults", days=12, rows_per_day=2_000, renamed_column_days=(9,))
    settings, days, summary = loop(config)
    refused = [d.day for d in summary.days if d.refused]
    assert refused == [days[9].isoformat()]
    assert summary.retrains == 0
    report = load_history(lake_storage(settings.lake), settings.dataset.name, days[9], days[9])[0]
    assert report.gate_refused and report.drift_verdict.startswith("not scored")
