"""Performance on delayed labels (tasks/monitoring/performance.py): a version's committed champion
predictions joined to the labels that arrived since, and the metrics on them."""

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from inferloop.core import catalog
from inferloop.core.storage import Storage
from inferloop.tasks.data.synthetic import generate_day
from inferloop.tasks.monitoring.performance import (
    label_metrics,
    labelled_predictions,
    performance_snapshot,
    scored_as_champion,
    scoring_versions,
)
from tests.fixtures.synthetic_lake import FEED as CONFIG
from tests.fixtures.synthetic_lake import FEED_DAYS as DAYS
from tests.fixtures.synthetic_lake import synthetic_lake

MODEL = "fraud"


@pytest.fixture
def lake(spec, tmp_path) -> Storage:
    return synthetic_lake(spec, tmp_path / "lake")


def predict(storage: Storage, version: str, day: date, role: str = "champion", perfect: bool = False) -> None:
    """Commit `version`'s predictions of `day`: scores (the true label when `perfect`) + manifest."""
    features, labels = generate_day(CONFIG, DAYS.index(day))
    scores = labels["is_fraud"].astype(float) if perfect else np.linspace(0, 1, len(labels))
    table = pa.table({"transaction_id": features["transaction_id"], "score": scores})
    storage.write_table(catalog.predictions_file(MODEL, version, day), table)
    storage.write_json(catalog.predictions_manifest(MODEL, version, day), {"role": role})


def test_only_committed_champion_predictions_count(lake):
    predict(lake, "2", DAYS[0])
    predict(lake, "10", DAYS[0])
    predict(lake, "3", DAYS[0], role="shadow")
    lake.write_table(catalog.predictions_file(MODEL, "4", DAYS[0]), pa.table({"score": [0.5]}))  # no manifest
    assert scored_as_champion(lake, MODEL, "2", DAYS[0])
    assert not scored_as_champion(lake, MODEL, "3", DAYS[0]) and not scored_as_champion(
        lake, MODEL, "4", DAYS[0]
    )
    assert scoring_versions(lake, MODEL, DAYS[0]) == ["2", "10"]  # by number, not by text
    assert scoring_versions(lake, MODEL, DAYS[1]) == []


def test_predictions_are_joined_to_their_labels_and_unlabelled_days_are_left_out(lake, spec):
    predict(lake, "1", DAYS[0], perfect=True)
    predict(lake, "1", DAYS[1], perfect=True)
    lake.delete_dir(catalog.labels(spec.name, DAYS[1] + timedelta(days=spec.label.delay_days)))  # not arrived
    joined = labelled_predictions(lake, spec, MODEL, "1", DAYS)  # DAYS[2] never scored
    assert list(joined.columns) == ["transaction_id", "score", "target", "event_day"]
    assert len(joined) == CONFIG.rows_per_day and set(joined["event_day"]) == {DAYS[0]}
    assert (joined["score"] == joined["target"]).all()  # each score met its own row's label

    empty = labelled_predictions(lake, spec, MODEL, "1", [DAYS[2]])
    assert empty.empty and list(empty.columns) == list(joined.columns)


def test_a_snapshot_covers_the_labelled_days_it_found(lake, spec):
    for day in DAYS[:2]:
        predict(lake, "1", day, perfect=True)
    snapshot = performance_snapshot(lake, spec, MODEL, "1", DAYS, threshold=0.5)
    assert (snapshot.model_version, snapshot.first_event_day, snapshot.last_event_day) == (
        "1",
        DAYS[0].isoformat(),
        DAYS[1].isoformat(),
    )
    assert snapshot.labelled_rows == 2 * CONFIG.rows_per_day
    assert snapshot.metrics["roc_auc"] == 1.0 and snapshot.metrics["accuracy"] == 1.0
    assert performance_snapshot(lake, spec, MODEL, "7", DAYS, threshold=0.5) is None


def test_one_class_gets_accuracy_and_calibration_but_no_ranking_metrics():
    target = np.zeros(4, dtype=int)
    metrics = label_metrics(target, np.array([0.1, 0.2, 0.6, 0.1]), threshold=0.5)
    assert metrics == {
        "calibration_error": pytest.approx(0.25),
        "label_rate": 0.0,
        "predicted_positive_rate": 0.25,
        "accuracy": 0.75,
    }
    both = label_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.4]), threshold=0.5)
    assert both["roc_auc"] == 1.0 and both["accuracy"] == 0.75
    assert both["calibration_error"] == pytest.approx(abs(0.4 - 0.5))


def test_a_model_that_labels_nothing_positive_shows_it_beside_the_label_rate():
    """5 % positives, ranked well, every score below 0.5: accuracy 0.95 and a fine ROC AUC hide
    that no row is ever labelled positive; the two rates side by side do not."""
    target = np.r_[np.ones(5), np.zeros(95)].astype(int)
    scores = np.r_[np.full(5, 0.4), np.full(95, 0.02)]
    metrics = label_metrics(target, scores, threshold=0.5)
    assert metrics["accuracy"] == 0.95 and metrics["roc_auc"] == 1.0
    assert (metrics["label_rate"], metrics["predicted_positive_rate"]) == (0.05, 0.0)


def test_labels_are_matched_by_id_not_by_position(lake, spec):
    predict(lake, "1", DAYS[0], perfect=True)
    path = catalog.predictions_file(MODEL, "1", DAYS[0])
    shuffled = lake.read_table(path).to_pandas().sample(frac=1.0, random_state=0)
    lake.write_table(path, pa.Table.from_pandas(shuffled, preserve_index=False))
    joined = labelled_predictions(lake, spec, MODEL, "1", [DAYS[0]])
    assert (joined["score"] == joined["target"]).all()
    assert not pd.Series(joined["transaction_id"]).is_monotonic_increasing


def test_a_feed_with_its_own_text_ids_is_imported_scored_and_measured(spec, settings, tmp_path):
    """Issue 17 (items 2 and 10): ids a CSV gives as text ("tx-17", "123.0") were cast to
    int64 by scoring (ArrowInvalid), and monitoring failed merging object and int64 ids. Import
    -> gate -> fit -> score -> join to the labels, each id kept exactly as the file wrote it."""
    from inferloop.core.registry import ModelVersionRef
    from inferloop.core.storage import lake_storage
    from inferloop.tasks.data.importing import import_source
    from inferloop.tasks.gate.partition_gate import gate_training_window
    from inferloop.tasks.model.training import fit_model
    from inferloop.tasks.scoring.batch_scoring import score_partition

    config = replace(CONFIG, days=4, rows_per_day=400)
    frames = []
    for index in range(config.days):
        features, labels = generate_day(config, index)
        frames.append(features.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column))
    export = pd.concat(frames, ignore_index=True)
    ids = [f"tx-{i}" if i % 2 else f"{i}.0" for i in range(len(export))]
    export[spec.id_column] = ids
    export.to_csv(tmp_path / "export.csv", index=False)
    storage = lake_storage(settings.lake)
    imported = import_source.fn(storage, spec, str(tmp_path / "export.csv"))
    assert (imported.rows_written, imported.rows_quarantined) == (len(export), 0)

    days = [config.day(i) for i in range(config.days)]
    window, _ = gate_training_window.fn(storage, spec, days[0], days[2], settings.gate)
    model = fit_model.fn(window, spec, settings.training, settings.scoring, "roc_auc").model
    ref = ModelVersionRef(name=MODEL, version="1", run_id="run-1")
    manifest = score_partition.fn(
        storage, spec, model, ref, days[3], "flow-run", settings.scoring, settings.gate
    )
    assert manifest.rows_scored == 400
    scored = storage.read_table(catalog.predictions(MODEL, "1", days[3])).column(spec.id_column).to_pylist()
    assert sorted(scored) == sorted(ids[-400:])

    joined = labelled_predictions(storage, spec, MODEL, "1", [days[3]])
    assert sorted(joined[spec.id_column]) == sorted(ids[-400:])
    expected = frames[3].assign(**{spec.id_column: ids[-400:]}).set_index(spec.id_column)
    assert (joined["target"].to_numpy() == expected.loc[joined[spec.id_column], "is_fraud"].to_numpy()).all()
    snapshot = performance_snapshot(storage, spec, MODEL, "1", days, threshold=0.5)
    assert snapshot.labelled_rows == 400 and 0.0 <= snapshot.metrics["roc_auc"] <= 1.0
