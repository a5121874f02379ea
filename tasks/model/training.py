"""Fitting and evaluating the model pipeline on a labelled window."""

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from prefect import task
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from inferloop.core.category_codes import CategoryCodeEncoder
from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.tasks.data.feeds import as_plain_columns, positive_target, prepare_features
from inferloop.tasks.model.evaluation import reference_profile

# Gradient boosting with native categorical splits: no one-hot expansion, so scoring stays fast.
MODEL_PARAMS = {
    "learning_rate": 0.1,
    "max_iter": 200,
    "max_leaf_nodes": 31,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "random_state": 0,
}


# Below this many rows, HistGradientBoosting predicts faster on one OpenMP thread: waking the
# thread pool for every tree costs more than it saves (48 rows: 17 ms -> 8.5 ms per call here).
SMALL_BATCH_ROWS = 10_000


def positive_scores(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """The model's probability of the positive class for every row."""
    if len(features) < SMALL_BATCH_ROWS:
        with threadpool_limits(1, user_api="openmp"):
            return model.predict_proba(features)[:, 1]
    return model.predict_proba(features)[:, 1]


class TrainingDataError(InferloopError, ValueError):
    """The labelled window cannot train a model (too few rows or a single class)."""


@dataclass
class TrainingResult:
    model: Pipeline
    metrics: dict[str, float]
    params: dict[str, object]
    train_rows: int
    holdout_rows: int
    train_end: date
    holdout_start: date
    input_example: pd.DataFrame
    holdout_target: np.ndarray
    holdout_scores: np.ndarray
    profile: dict  # reference profile of the training rows, for monitoring


def build_pipeline(spec: DatasetSpec) -> Pipeline:
    """Encode categoricals as codes of the training categories (unseen → missing) and let the
    booster split on them natively."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # here: scoring needs no fitting code

    encoder = CategoryCodeEncoder(spec.categorical_features, spec.numeric_features)
    categorical_mask = [True] * len(spec.categorical_features) + [False] * len(spec.numeric_features)
    booster = HistGradientBoostingClassifier(categorical_features=categorical_mask, **MODEL_PARAMS)
    return Pipeline([("encode", encoder), ("model", booster)])


def classification_metrics(target: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    # Imported here: sklearn.metrics imports scipy.stats (~0.5 s), which scoring does not need.
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    if len(np.unique(target)) < 2:
        raise TrainingDataError("The evaluation rows hold a single class: widen the window")
    predicted = (scores >= threshold).astype(int)
    return {
        "accuracy": float(np.mean(predicted == target)),
        "roc_auc": float(roc_auc_score(target, scores)),
        "pr_auc": float(average_precision_score(target, scores)),
        "f1": float(f1_score(target, predicted, zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(target, predicted)),
        "log_loss": float(log_loss(target, scores, labels=[0, 1])),
    }


def evaluate(
    model: Pipeline, features: pd.DataFrame, target: pd.Series, threshold: float
) -> dict[str, float]:
    return classification_metrics(np.asarray(target), positive_scores(model, features), threshold)


def split_by_time(
    frame: pd.DataFrame, spec: DatasetSpec, holdout_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier days, hold out the latest `holdout_days` days (no look-ahead)."""
    event_day = pd.to_datetime(frame[spec.time_column]).dt.normalize()
    days = np.sort(event_day.unique())
    if len(days) <= holdout_days:
        raise TrainingDataError(
            f"The window has {len(days)} day(s); it needs more than holdout_days={holdout_days}"
        )
    holdout_start = days[-holdout_days]
    return frame[event_day < holdout_start], frame[event_day >= holdout_start]


@task(name="fit-model")
def fit_model(frame: pd.DataFrame, spec: DatasetSpec, holdout_days: int, threshold: float) -> TrainingResult:
    """Fit on the earlier days, report metrics on the held-out latest days."""
    train, holdout = split_by_time(frame, spec, holdout_days)
    train_target = positive_target(train, spec)
    if train_target.nunique() < 2:
        raise TrainingDataError("The training days hold a single class: widen the window")
    model = build_pipeline(spec)
    train_features = prepare_features(train, spec)
    model.fit(train_features, train_target)
    holdout_target = positive_target(holdout, spec).to_numpy()
    holdout_scores = positive_scores(model, prepare_features(holdout, spec))
    metrics = classification_metrics(holdout_target, holdout_scores, threshold)
    day = pd.to_datetime(frame[spec.time_column]).dt.date
    return TrainingResult(
        model=model,
        metrics=metrics,
        params={**MODEL_PARAMS, "holdout_days": holdout_days, "decision_threshold": threshold},
        train_rows=len(train),
        holdout_rows=len(holdout),
        train_end=day[train.index].max(),
        holdout_start=day[holdout.index].min(),
        input_example=as_plain_columns(train_features.head(5)),
        holdout_target=holdout_target,
        holdout_scores=holdout_scores,
        profile=reference_profile(train_features, positive_scores(model, train_features), spec),
    )
