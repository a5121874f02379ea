"""The monitor flow: measure a scored day and the labels that arrived, save the report (lake and
chart), return the retrain verdict; a confirmed breach raises `inferloop.model.degraded` (the
retrain deployment's trigger) and stays open on the champion's version, and a trigger the storm
guard blocks is recorded in the ledger.
(tests/e2e/test_monitoring.py covers the scenarios over weeks of history.)"""

import time
from datetime import timedelta

import pytest

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import DEGRADED_EVENT, monitor
from inferloop.tasks.model.registry import find_alias
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision, load_ledger, record
from tests.flows.conftest import DAYS, register

CHANGED = DAYS[9]  # a day of the new fraud pattern, scored by a champion fitted on the old one
DAY = DAYS[10]  # its labels arrive on DAY


@pytest.fixture
def degraded(pool, lake, feed, monkeypatch):
    """@champion fitted before the change has scored CHANGED and DAY."""
    monkeypatch.setenv("INFERLOOP_CONFIRM_DAYS", "1")  # one breached day is confirmed
    monkeypatch.setenv("INFERLOOP_PERFORMANCE_TRIGGER", "drop")  # one day: too little for a detector
    version = register(lake, pool.before, "champion")
    manifests = batch_inference(partition_date=CHANGED, end_date=DAY)
    settings = load_settings()
    return settings, lake_storage(settings.lake), version, manifests


def degraded_events(model_name: str) -> list:
    """`inferloop.model.degraded` events about `model_name` the Prefect API has stored."""
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    only_this_model = EventFilter(
        event=EventNameFilter(name=[DEGRADED_EVENT]),
        resource=EventResourceFilter(id=[f"inferloop.model.{model_name}"]),
    )
    with get_client(sync_client=True) as client:
        return client.read_events(filter=only_this_model, limit=10).events


def test_a_confirmed_breach_saves_the_report_and_asks_for_a_retrain(degraded):
    settings, storage, version, manifests = degraded
    decision = monitor(day=DAY)

    assert (decision.day, decision.action, decision.champion_version) == (DAY.isoformat(), "retrain", version)
    assert any(reason.startswith("performance: roc_auc") for reason in decision.reasons), decision.reasons
    assert decision.train_from == CHANGED.isoformat()  # a retrain learns from the change on
    assert load_ledger(storage, settings.dataset.name, DAY) == []  # the retrain flow records it
    # Open on the champion until a day without a breach: inferloop serve's degraded-model policy.
    breach = find_alias(settings.registry, "champion").open_breach
    assert breach.startswith(f"breach confirmed on {DAY.isoformat()}: ") and decision.reasons[0] in breach

    dataset = settings.dataset.name
    report = storage.read_json(catalog.monitoring_report(dataset, DAY))
    assert (report["model_version"], report["scored_by"], report["day"]) == (
        version,
        version,
        DAY.isoformat(),
    )
    assert report["rows_scored"] == manifests[1].rows_scored and report["drift_verdict"] == "measured"
    assert report["day_performance"]["labelled_rows"] == manifests[0].rows_scored  # CHANGED's labels
    assert report["breaches"] == decision.reasons
    metrics = storage.read_table(catalog.monitoring_metrics(dataset, DAY)).to_pandas()
    assert set(metrics["day"]) == {DAY.isoformat()} and "rolling_roc_auc" in set(metrics["metric"])
    assert storage.read_bytes(catalog.history_chart_file(dataset, DAY)).startswith(b"\x89PNG")

    deadline = time.monotonic() + 60  # the API stores events in batches
    while not (events := degraded_events(settings.registry.model_name)) and time.monotonic() < deadline:
        time.sleep(1)
    (event,) = events
    assert event.payload == {
        "day": DAY.isoformat(),
        "reasons": decision.reasons,
        "champion_version": version,
    }


def test_a_trigger_the_storm_guard_blocks_is_recorded_as_suppressed(degraded):
    settings, storage, version, _ = degraded
    earlier = RetrainDecision(
        DAY.isoformat(),
        "retrain",
        ["a retrain already ran today"],
        champion_version=version,
        outcome="v9 reject",
    )
    record(storage, settings.dataset.name, earlier)

    decision = monitor(day=DAY, chart=False)
    assert decision.action == "suppressed"
    assert "INFERLOOP_MAX_RETRAINS_PER_DAY" in decision.suppressed_because
    ledger = load_ledger(storage, settings.dataset.name, DAY - timedelta(days=1))
    assert [(d.action, d.decided_at) for d in ledger] == [
        ("retrain", earlier.decided_at),
        ("suppressed", decision.decided_at),
    ]
    assert not storage.exists(catalog.history_chart_file(settings.dataset.name, DAY))
