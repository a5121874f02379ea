"""A replay's record and metrics (tasks/monitoring/replay.py): one row per day from what the loop
did, what the loop predicted (by the champion of each day), and the static baseline scored on
exactly the same rows."""

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from inferloop.core import catalog
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import positive_target, prepare_features, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.model.prediction import positive_scores
from inferloop.tasks.model.training import build_pipeline
from inferloop.tasks.monitoring.daily_report import MonitoringReport
from inferloop.tasks.monitoring.drift import FeatureDrift
from inferloop.tasks.monitoring.performance import PerformanceSnapshot
from inferloop.tasks.monitoring.replay import (
    ReplayDay,
    loop_predictions,
    prequential_metrics,
    replay_day,
    show_second_looks,
    static_predictions,
)
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision

MODEL = "fraud"
CONFIG = GeneratorConfig(days=3, rows_per_day=300)
DAYS = [CONFIG.day(i) for i in range(CONFIG.days)]


def monitoring_report(day: date, **fields) -> MonitoringReport:
    return MonitoringReport("transactions", MODEL, "1", day.isoformat(), **fields)


def test_a_day_row_records_scoring_performance_drift_and_retrain():
    snapshot = PerformanceSnapshot("1", "2026-01-01", "2026-01-01", 280, {"accuracy": 0.96, "roc_auc": 0.81})
    drift = [
        FeatureDrift("amount", "numeric", 300, 0.4, flagged=True),
        FeatureDrift("age", "numeric", 300, 0.01),
    ]
    manifest = SimpleNamespace(rows_scored=290, rows_quarantined=10)
    decision = RetrainDecision("2026-01-02", "retrain", outcome="v2 promote: passed every gate")
    row = replay_day(
        DAYS[1], "1", manifest, monitoring_report(DAYS[1], day_performance=snapshot, drift=drift), decision
    )
    assert row == ReplayDay(
        day="2026-01-02",
        champion_version="1",
        rows_scored=290,
        rows_quarantined=10,
        refused=False,
        labelled_rows=280,
        accuracy=0.96,
        roc_auc=0.81,
        drifted=["amount"],
        retrain="retrained: v2 promote",
    )


def test_a_refused_day_scores_nothing_and_a_suppressed_retrain_says_why():
    suppressed = RetrainDecision(
        "2026-01-02", "suppressed", suppressed_because="cooldown: a retrain on 2026-01-01, next allowed ..."
    )
    row = replay_day(DAYS[1], "1", None, monitoring_report(DAYS[1]), suppressed)
    assert (row.refused, row.rows_scored, row.labelled_rows, row.roc_auc) == (True, 0, 0, None)
    assert row.retrain == "suppressed: cooldown"
    quiet = replay_day(DAYS[1], "1", None, monitoring_report(DAYS[1]), RetrainDecision("2026-01-02", "none"))
    assert quiet.retrain == ""


def test_a_days_second_looks_show_beside_its_retrain_verdict():
    day, next_day = DAYS[1].isoformat(), DAYS[2].isoformat()
    ledger = [
        RetrainDecision(
            day, "none", ["second look at v7"], outcome="v7 second look, reject: beats_champion: ..."
        ),
        RetrainDecision(day, "retrain", outcome="v8 promote: passed every gate"),
        RetrainDecision(next_day, "none", outcome="v9 second look, promote: passed every gate"),
    ]
    retrained, quiet = (
        replay_day(DAYS[1], "1", None, monitoring_report(DAYS[1]), ledger[1]),
        replay_day(DAYS[2], "1", None, monitoring_report(DAYS[2]), RetrainDecision(next_day, "none")),
    )
    untouched = replay_day(DAYS[0], "1", None, monitoring_report(DAYS[0]), RetrainDecision("x", "none"))
    show_second_looks([retrained, quiet, untouched], ledger)
    assert retrained.retrain == "v7 second look, reject; retrained: v8 promote"
    assert quiet.retrain == "v9 second look, promote"
    assert untouched.retrain == ""  # only a look of its own day


@pytest.fixture
def lake(settings, tmp_path) -> Storage:
    storage = Storage((tmp_path / "lake").as_uri())
    write_synthetic_feed.fn(storage, settings.dataset, CONFIG)
    return storage


def commit_predictions(storage: Storage, version: str, day: date, score: float) -> None:
    ids = generate_day(CONFIG, DAYS.index(day))[0]["transaction_id"]
    table = pa.table({"transaction_id": ids, "score": np.full(len(ids), score)})
    storage.write_table(catalog.predictions_file(MODEL, version, day), table)
    storage.write_json(catalog.predictions_manifest(MODEL, version, day), {"role": "champion"})


def test_the_loop_is_measured_on_each_day_champion_and_skips_refused_days(lake, settings):
    commit_predictions(lake, "1", DAYS[0], score=0.1)
    commit_predictions(lake, "2", DAYS[1], score=0.9)  # promoted overnight
    commit_predictions(lake, "1", DAYS[1], score=0.1)  # the old champion's output is not the loop's
    days = [
        ReplayDay(DAYS[0].isoformat(), "1"),
        ReplayDay(DAYS[1].isoformat(), "2"),
        ReplayDay(DAYS[2].isoformat(), "2", refused=True),
    ]
    loop = loop_predictions(lake, settings.dataset, MODEL, days)
    assert {day: set(scores) for day, scores in loop.groupby("event_day")["score"]} == {
        DAYS[0]: {0.1},
        DAYS[1]: {0.9},
    }
    assert len(loop) == 2 * CONFIG.rows_per_day
    assert loop_predictions(lake, settings.dataset, MODEL, days[2:]).empty


def test_the_static_baseline_scores_exactly_the_rows_the_loop_scored(lake, settings):
    spec = settings.dataset
    train, labels = generate_day(CONFIG, 0)
    train = train.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column)
    model = build_pipeline(spec).fit(prepare_features(train, spec), positive_target(train, spec))
    loop = pd.DataFrame(
        {
            spec.id_column: generate_day(CONFIG, 1)[0][spec.id_column].iloc[::3],  # a third of day 1
            "score": 0.5,
            "target": 1,
            "event_day": DAYS[1],
        }
    )
    static = static_predictions(lake, spec, model, loop)
    features = generate_day(CONFIG, 1)[0].iloc[::3]
    assert static["score"].to_numpy() == pytest.approx(
        positive_scores(model, prepare_features(features, spec))
    )
    assert (static["target"] == 1).all() and len(static) == len(loop)


def test_prequential_metrics_count_the_rows_and_need_some():
    predictions = pd.DataFrame({"score": [0.9, 0.2, 0.7, 0.1], "target": [1, 0, 0, 0]})
    metrics = prequential_metrics(predictions, threshold=0.5)
    assert metrics["rows"] == 4.0 and metrics["roc_auc"] == 1.0 and metrics["accuracy"] == 0.75
    assert prequential_metrics(pd.DataFrame(), threshold=0.5) == {}
