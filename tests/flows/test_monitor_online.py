"""The monitor flow covers the online endpoint's traffic: the rows `inferloop serve` scored (the
real app, in this process) are measured beside the batch predictions, with the same functions,
on their own, and their breaches are named "(online)"."""

import pytest

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import monitor
from inferloop.serving.keys import add_key
from tests.flows.conftest import DAYS, register
from tests.serving.conftest import feed_records, in_process_endpoint

pytestmark = pytest.mark.slow

CHANGED = DAYS[9]  # a day of the new fraud pattern, scored by a champion fitted on the old one
DAY = DAYS[10]  # its labels arrive on DAY


def test_online_rows_are_monitored_like_batch_predictions_and_their_breaches_named(
    pool, lake, feed, tmp_path, monkeypatch
):
    monkeypatch.setenv("INFERLOOP_CONFIRM_DAYS", "1")  # one breached day is confirmed
    monkeypatch.setenv("INFERLOOP_PERFORMANCE_TRIGGER", "drop")  # one labelled day: no detector
    version = register(lake, pool.before, "champion")
    batch = batch_inference(partition_date=CHANGED, end_date=DAY)
    key = add_key(tmp_path / "keys.json", "app", ["score"])
    header = {"Authorization": f"Bearer {key}"}
    # The application scores the same events online: every row of both days, and retries a few.
    with in_process_endpoint(tmp_path, monkeypatch) as app:
        for day in (CHANGED, DAY):
            records = feed_records(500, day_index=DAYS.index(day))
            for request in (records, records[:10]):
                answer = app.post("/invocations", json={"dataframe_records": request}, headers=header)
                assert answer.status_code == 200, answer.text

    decision = monitor(day=DAY, chart=False)

    settings = load_settings()
    report = lake_storage(settings.lake).read_json(catalog.monitoring_report(settings.dataset.name, DAY))
    online = report["online"]
    # A retried id counts once; rows the data contract rejects online are those the gate quarantined.
    assert online["rows_scored"] == batch[1].rows_scored == report["rows_scored"]
    assert online["rows_by_version"] == {version: online["rows_scored"]}
    assert (online["scored_by"], online["drift_verdict"]) == (version, "measured")
    # The same events scored by the same version: the same drift and performance as in batch.
    assert {d["feature"]: d["psi"] for d in online["drift"]} == pytest.approx(
        {d["feature"]: d["psi"] for d in report["drift"]}
    )
    assert online["prediction_psi"] == pytest.approx(report["prediction_psi"], abs=1e-6)
    day, batch_day = online["day_performance"], report["day_performance"]
    assert (day["first_event_day"], day["labelled_rows"]) == (CHANGED.isoformat(), batch[0].rows_scored)
    assert day["metrics"] == pytest.approx(batch_day["metrics"], abs=1e-6)
    # The champion fitted on the old pattern fails on both paths; each breach names its source,
    # and the retrain policy acts on them (the calibration check runs on batch predictions only).
    online_breaches = [b for b in report["breaches"] if "(online)" in b]
    batch_breaches = [b for b in report["breaches"] if "(online)" not in b]
    assert any(b.startswith("performance (online): roc_auc") for b in online_breaches), online_breaches
    assert {b.replace(" (online)", "", 1) for b in online_breaches} <= set(batch_breaches)
    assert (decision.action, decision.reasons) == ("retrain", report["breaches"])
    metrics = lake_storage(settings.lake).read_table(catalog.monitoring_metrics(settings.dataset.name, DAY))
    names = set(metrics.column("metric").to_pylist())
    assert {"online_rows_scored", "online_psi", "online_day_roc_auc", "rows_scored", "day_roc_auc"} <= names
