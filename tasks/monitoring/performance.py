"""Model performance on delayed labels: past predictions joined to the labels that arrived since."""

from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, join_on_ids, positive_target, read_labels
from inferloop.tasks.model.comparison import rarer_class_rows
from inferloop.tasks.model.training import classification_metrics


@dataclass
class PerformanceSnapshot:
    """Metrics of one model version on the labelled predictions of some event days."""

    model_version: str
    first_event_day: str
    last_event_day: str
    labelled_rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    rarer_class_rows: int = -1  # of `labelled_rows` (-1: not counted)

    def to_dict(self) -> dict:
        return asdict(self)


def label_metrics(target: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """Accuracy, calibration and the share of rows labelled positive, by the labels and by the
    model, always; the ranking metrics only when both classes occur. A model that labels
    almost nothing positive while the labels hold a few percent (or the reverse) shows here
    whatever the monitored metric is."""
    predicted = scores >= threshold
    metrics = {
        "calibration_error": float(abs(scores.mean() - target.mean())),
        "label_rate": float(target.mean()),
        "predicted_positive_rate": float(predicted.mean()),
    }
    if len(np.unique(target)) == 2:
        return metrics | classification_metrics(target, scores, threshold)
    return metrics | {"accuracy": float(np.mean(predicted.astype(int) == target))}


def scored_as_champion(storage: Storage, model_name: str, version: str, day: date) -> bool:
    """True when `version`'s champion predictions for `day` are committed (a manifest exists)."""
    manifest = catalog.predictions_manifest(model_name, version, day)
    return storage.exists(manifest) and storage.read_json(manifest)["role"] == "champion"


def scoring_versions(storage: Storage, model_name: str, day: date) -> list[str]:
    """Versions whose champion predictions for `day` are committed, oldest first."""
    root = catalog.model_predictions(model_name)
    versions = [catalog.version_of(name) for name in storage.subdirectories(root, catalog.VERSION_KEY)]
    return sorted((v for v in versions if scored_as_champion(storage, model_name, v, day)), key=int)


def read_predictions(
    storage: Storage, spec: DatasetSpec, model_name: str, version: str, day: date
) -> pd.DataFrame:
    directory = catalog.predictions(model_name, version, day)
    return storage.read_table(directory, [spec.id_column, "score"]).to_pandas()


def labelled_predictions(
    storage: Storage, spec: DatasetSpec, model_name: str, version: str, days: list[date]
) -> pd.DataFrame:
    """Predictions of `version` for those of `days` it scored, joined to their arrived labels
    (columns: id, score, target, event_day). Rows without a label yet are left out."""
    frames = []
    for day in days:
        if not scored_as_champion(storage, model_name, version, day):
            continue
        try:
            labels = read_labels(storage, spec, day, day)
        except MissingDataError:
            continue
        joined = join_on_ids(
            read_predictions(storage, spec, model_name, version, day), labels, spec, validate="one_to_one"
        )
        joined["target"] = positive_target(joined, spec)
        frames.append(joined.assign(event_day=day)[[spec.id_column, "score", "target", "event_day"]])
    if not frames:
        return pd.DataFrame(columns=[spec.id_column, "score", "target", "event_day"])
    return pd.concat(frames, ignore_index=True)


def performance_snapshot(
    storage: Storage, spec: DatasetSpec, model_name: str, version: str, days: list[date], threshold: float
) -> PerformanceSnapshot | None:
    """Metrics of `version` over `days`, or None when none of its predictions there has a label."""
    return snapshot_of(labelled_predictions(storage, spec, model_name, version, days), version, threshold)


def snapshot_of(joined: pd.DataFrame, version: str, threshold: float) -> PerformanceSnapshot | None:
    """Metrics of `version`'s labelled predictions (target, score, event_day); None for none."""
    if joined.empty:
        return None
    return PerformanceSnapshot(
        model_version=version,
        first_event_day=min(joined["event_day"]).isoformat(),
        last_event_day=max(joined["event_day"]).isoformat(),
        labelled_rows=len(joined),
        metrics=label_metrics(joined["target"].to_numpy(), joined["score"].to_numpy(float), threshold),
        rarer_class_rows=rarer_class_rows(joined["target"].to_numpy()),
    )
