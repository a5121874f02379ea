"""The monitor flow on a feed of small partitions (100 rows a day, below `min_drift_rows`): drift is
measured on the recent partitions the champion scored, pooled back from the monitored day, and the
report says what it rests on; a covariate shift is flagged, and while labels show the champion
still performing it is only reported; with `drift_trigger` always, confirmed over `confirm_days`
consecutive monitored days, it asks for a retrain. (tests/tasks/monitoring/test_drift_window.py
covers where pooling stops.)"""

import pytest

from inferloop.core import catalog
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import batch_inference
from inferloop.flows.monitor import monitor
from inferloop.tasks.data.synthetic import GeneratorConfig
from tests.flows.conftest import register, write_feed

# `amount` shifts from day 10 on; the label relationship stays: a covariate shift only. 100 rows:
# the fewest the committed transactions suite accepts in a partition.
SMALL = GeneratorConfig(scenario="covariate_drift", days=14, rows_per_day=100, change_day=10)
DAYS = [SMALL.day(i) for i in range(SMALL.days)]
pytestmark = pytest.mark.slow  # six days scored and three monitor flows: ~40 s on 2 cores


def test_small_partitions_get_a_pooled_drift_verdict_that_flags_the_shifted_feature(pool, lake, monkeypatch):
    write_feed(SMALL)
    register(lake, pool.before, "champion")  # fitted on 500-row days before any shift
    manifests = batch_inference(partition_date=DAYS[8], end_date=DAYS[13])
    assert [m.rows_scored for m in manifests] == [100] * 6
    settings = load_settings()
    storage, dataset = lake_storage(settings.lake), settings.dataset.name
    assert settings.monitoring.min_drift_rows == 200  # one day alone: "too few rows (100 < 200)"

    monitor(day=DAYS[9], chart=False)
    before = storage.read_json(catalog.monitoring_report(dataset, DAYS[9]))
    assert before["rows_scored"] == 100
    assert before["drift_verdict"] == f"measured on 2 partitions {DAYS[8]}..{DAYS[9]}, 200 rows"
    assert before["drift_partitions"] == [DAYS[8].isoformat(), DAYS[9].isoformat()]
    assert before["drift_rows"] == 200 and len(before["drift"]) == len(settings.dataset.profiled_features)
    assert [d["feature"] for d in before["drift"] if d["flagged"]] == []  # 200 stable rows: no false flag

    monitor(day=DAYS[12], chart=False)
    decision = monitor(day=DAYS[13], chart=False)
    after = storage.read_json(catalog.monitoring_report(dataset, DAYS[13]))
    assert after["drift_verdict"] == f"measured on 2 partitions {DAYS[12]}..{DAYS[13]}, 200 rows"
    assert [d["feature"] for d in after["drift"] if d["flagged"]] == ["amount"]
    # The labels (a covariate shift leaves the label relationship alone) give a verdict: drift
    # is reported, not acted on.
    assert not any(b.startswith("drift:") for b in after["breaches"]) and decision.action != "retrain"

    monkeypatch.setenv("INFERLOOP_DRIFT_TRIGGER", "always")
    monitor(day=DAYS[12], chart=False)
    decision = monitor(day=DAYS[13], chart=False)
    after = storage.read_json(catalog.monitoring_report(dataset, DAYS[13]))
    assert any(b.startswith("drift: amount PSI") for b in after["breaches"]), after["breaches"]
    # Days 12 and 13 both breach (their pools overlap, each holds its own new day): confirmed.
    assert decision.action == "retrain" and decision.reasons == after["breaches"]

    # Features kept 2 partitions: a pool reaches no further back, whatever its bound (30 by default).
    monkeypatch.setenv("INFERLOOP_RETAIN_FEATURES_DAYS", "2")
    monkeypatch.setenv("INFERLOOP_MIN_DRIFT_ROWS", "300")
    storage.delete_dir(catalog.features(dataset, DAYS[11]))  # as retention as of DAYS[14] would have
    monitor(day=DAYS[13], chart=False)
    bounded = storage.read_json(catalog.monitoring_report(dataset, DAYS[13]))
    assert bounded["drift_verdict"] == (
        f"too few rows (200 < 300 in 2 partitions {DAYS[12]}..{DAYS[13]}; pooled back at most 2 "
        "partitions, INFERLOOP_RETAIN_FEATURES_DAYS)"
    )

    # Unbounded by retention (a monitor rerun after retention moved on): a deleted partition adds
    # nothing and the pool goes on past it.
    monkeypatch.delenv("INFERLOOP_RETAIN_FEATURES_DAYS")
    monitor(day=DAYS[13], chart=False)
    past = storage.read_json(catalog.monitoring_report(dataset, DAYS[13]))
    assert past["drift_verdict"] == f"measured on 3 partitions {DAYS[10]}..{DAYS[13]}, 300 rows"
