"""Evaluating the loop on history: the day-by-day record of a replay and its prequential metrics.

Prequential: every prediction is made before its label is known (by the champion of that day)
and scored once its label arrives. The static baseline is the first champion kept forever,
scored on exactly the rows the loop scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from inferloop.core.dataset import DatasetSpec
from inferloop.core.periods import parse_key
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import join_on_ids, prepare_features, read_feature_partition
from inferloop.tasks.model.prediction import positive_scores
from inferloop.tasks.monitoring.daily_report import MonitoringReport
from inferloop.tasks.monitoring.performance import label_metrics, labelled_predictions
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision
from inferloop.tasks.promotion.second_look import IN_LEDGER

if TYPE_CHECKING:  # policy_comparison builds on this module
    from inferloop.tasks.monitoring.policy_comparison import PolicyComparison


@dataclass
class ReplayDay:
    day: str
    champion_version: str
    rows_scored: int = 0
    rows_quarantined: int = 0
    refused: bool = False
    labelled_rows: int = 0  # predictions of the event day whose labels arrived today
    accuracy: float | None = None
    roc_auc: float | None = None
    drifted: list[str] = field(default_factory=list)
    retrain: str = ""  # "", "retrain: <outcome>" or "suppressed: <why>"


@dataclass
class ReplaySummary:
    dataset: str
    start: str
    end: str
    days: list[ReplayDay]
    loop: dict[str, float]  # prequential metrics of the loop
    static: dict[str, float]  # of the first champion, never replaced
    retrains: int
    promotions: int
    table_uri: str = ""
    comparison: PolicyComparison | None = None  # the loop against its baselines (policy_comparison)

    def to_dict(self) -> dict:
        return asdict(self)


def replay_day(
    day: date,
    champion_version: str,
    manifest,
    report: MonitoringReport,
    decision: RetrainDecision,
) -> ReplayDay:
    row = ReplayDay(day.isoformat(), champion_version, refused=manifest is None)
    if manifest is not None:
        row.rows_scored, row.rows_quarantined = manifest.rows_scored, manifest.rows_quarantined
    if snapshot := report.day_performance:
        row.labelled_rows = snapshot.labelled_rows
        row.accuracy = snapshot.metrics.get("accuracy")
        row.roc_auc = snapshot.metrics.get("roc_auc")
    row.drifted = report.drifted_features
    if decision.action == "retrain":
        row.retrain = f"retrained: {decision.outcome.split(':')[0]}"  # e.g. "v2 promote"
    elif decision.action == "suppressed":
        row.retrain = f"suppressed: {decision.suppressed_because.split(':')[0]}"
    return row


def show_second_looks(rows: list[ReplayDay], ledger: list[RetrainDecision]) -> None:
    """Each day's second looks, from the replay's ledger, before its retrain verdict in the row
    (the monitor returns that verdict: a look that did not promote is only in the ledger)."""
    looks: dict[str, list[str]] = {}
    for entry in ledger:
        if IN_LEDGER in entry.outcome:
            looks.setdefault(entry.day, []).append(entry.outcome.split(":")[0])  # "v7 second look, reject"
    for row in rows:
        if row.day in looks:
            row.retrain = "; ".join([*looks[row.day], row.retrain] if row.retrain else looks[row.day])


def loop_predictions(
    storage: Storage,
    spec: DatasetSpec,
    model_name: str,
    days: list[ReplayDay],
    thresholds: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """What the loop predicted on each day (the champion of that day), joined to arrived labels
    (columns: id, score, target, event_day; none when every day was refused); with `thresholds`
    (version -> its decision threshold), also the threshold each row was labelled at."""
    frames = []
    for row in days:
        if row.refused:
            continue
        frame = labelled_predictions(storage, spec, model_name, row.champion_version, [parse_key(row.day)])
        if not frame.empty:
            frames.append(
                frame if thresholds is None else frame.assign(threshold=thresholds[row.champion_version])
            )
    return pd.concat(frames, ignore_index=True) if frames else no_predictions(spec)


def row_thresholds(predictions: pd.DataFrame, default: float) -> float | np.ndarray:
    """The threshold each row is labelled at: the one of the version that scored it (column
    `threshold`, where a policy's versions have their own), else `default`."""
    return predictions["threshold"].to_numpy(np.float64) if "threshold" in predictions else default


PREDICTION_COLUMNS = ("score", "target", "event_day")  # after the id column


def no_predictions(spec: DatasetSpec) -> pd.DataFrame:
    """Predictions as every policy's are kept (id, score, target, event_day), none of them."""
    return pd.DataFrame(columns=[spec.id_column, *PREDICTION_COLUMNS])


def loop_row_features(storage: Storage, spec: DatasetSpec, day: date, rows: pd.DataFrame) -> pd.DataFrame:
    """The feature rows of the loop's labelled `rows` of event `day`, with their id, target and
    event_day: what every baseline scores."""
    keys = rows[[spec.id_column, "target", "event_day"]]
    return join_on_ids(read_feature_partition(storage, spec, day), keys, spec)


def scored(spec: DatasetSpec, features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """`features`' rows as predictions with `scores`."""
    return features[[spec.id_column, "target", "event_day"]].assign(score=scores)[
        [spec.id_column, *PREDICTION_COLUMNS]
    ]


def static_predictions(
    storage: Storage, spec: DatasetSpec, model, loop: pd.DataFrame, threshold: float | None = None
) -> pd.DataFrame:
    """The same rows scored by `model` (the first champion); columns as the loop's, with the
    model's own decision `threshold` when given."""
    frames = []
    for day, rows in loop.groupby("event_day"):
        features = loop_row_features(storage, spec, day, rows)
        frames.append(scored(spec, features, positive_scores(model, prepare_features(features, spec))))
    static = pd.concat(frames, ignore_index=True) if frames else no_predictions(spec)
    return static if threshold is None else static.assign(threshold=threshold)


def version_scores_of(
    storage: Storage, settings: Settings, version: str, rows: pd.DataFrame
) -> tuple[np.ndarray, float]:
    """`version`'s scores of the loop's labelled `rows` (in their order) and its decision threshold."""
    from inferloop.tasks.model.registry import load_model, model_registry

    ref = model_registry(settings.registry).get_version(version)
    spec = settings.dataset
    scores = static_predictions(storage, spec, load_model(settings.registry, ref), rows)
    aligned = rows[[spec.id_column]].merge(
        scores[[spec.id_column, "score"]], on=spec.id_column, how="left", validate="one_to_one"
    )
    return aligned["score"].to_numpy(np.float64), ref.threshold(settings.scoring.decision_threshold)


def prequential_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float]:
    """The metrics of `predictions`, each row labelled at its own threshold (`row_thresholds`,
    default `threshold`)."""
    if predictions.empty:
        return {}
    metrics = label_metrics(
        predictions["target"].to_numpy(),
        predictions["score"].to_numpy(np.float64),
        row_thresholds(predictions, threshold),
    )
    return {"rows": float(len(predictions)), **metrics}
