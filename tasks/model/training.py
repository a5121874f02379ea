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
from inferloop.core.settings import ScoringSettings, TrainingSettings
from inferloop.tasks.data.feeds import as_plain_columns, positive_target, prepare_features
from inferloop.tasks.model.comparison import rarer_class_rows
from inferloop.tasks.model.decision_threshold import ThresholdChoice, choose_threshold
from inferloop.tasks.model.evaluation import reference_profile
from inferloop.tasks.model.prediction import SMALL_BATCH_ROWS, positive_scores


def model_params(
    training: TrainingSettings | None = None, leaf_nodes: int | None = None
) -> dict[str, object]:
    """The booster's parameters; its size (trees, leaves) from `training`, the settings' defaults
    when None (not the environment's: a test or benchmark builds the same model anywhere), with
    `leaf_nodes` (a capacity search's choice) in place of the most leaves per tree."""
    training = training or TrainingSettings.model_construct()
    return {
        "learning_rate": 0.1,
        "max_iter": training.model_max_iter,
        "max_leaf_nodes": training.model_max_leaf_nodes if leaf_nodes is None else leaf_nodes,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "random_state": 0,
    }


MODEL_PARAMS = model_params()


PERSONAL_PLACEHOLDER = "(personal: withheld)"  # the input example's text in place of a personal value


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
    holdout_scores: np.ndarray  # of the validation fit, which never saw these rows
    holdout_ids: np.ndarray
    profile: dict  # reference profile of the training rows, for monitoring
    refitted: bool  # the model was refitted on the whole window after validation
    threshold: ThresholdChoice  # the version's decision threshold, chosen on the holdout


def personal_values_withheld(example: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The input example without the values of personal features (anyone who can browse the run
    sees it): numerics missing, text a placeholder, so the signature keeps each column's type."""
    personal = [column for column in spec.personal_columns if column in example.columns]
    withheld = {c: np.nan if c in spec.numeric_features else PERSONAL_PLACEHOLDER for c in personal}
    return example.assign(**withheld)


def build_pipeline(
    spec: DatasetSpec, training: TrainingSettings | None = None, leaf_nodes: int | None = None
) -> Pipeline:
    """Encode categoricals as codes of the training categories (unseen → missing) and let the
    booster split on them natively: gradient boosting with native categorical splits, no one-hot
    expansion, so scoring stays fast. Its size comes from `training` (`model_params`), its
    leaves per tree from `leaf_nodes` where given (`chosen_capacity`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # here: scoring needs no fitting code

    personal = [column for column in spec.categorical_features if column in spec.pii]
    encoder = CategoryCodeEncoder(spec.categorical_features, spec.numeric_features, personal)
    categorical_mask = [True] * len(spec.categorical_features) + [False] * len(spec.numeric_features)
    booster = HistGradientBoostingClassifier(
        categorical_features=categorical_mask, **model_params(training, leaf_nodes)
    )
    return Pipeline([("encode", encoder), ("model", booster)])


def classification_metrics(
    target: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray
) -> dict[str, float]:
    """Metrics of `scores` against `target`, labelling rows at `threshold` (one, or one per row)."""
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
    frame: pd.DataFrame, spec: DatasetSpec, holdout_days: int, min_holdout_rows: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier days, hold out the latest days (no look-ahead): at least `holdout_days`
    of them, more until they hold `min_holdout_rows` rows (a comparison on a few dozen rows is
    noise), but never more than half the window."""
    event_day = spec.partitioning.floor_times(frame[spec.time_column])
    rows_per_day = event_day.value_counts().sort_index()
    days = rows_per_day.index.to_numpy()
    if len(days) <= holdout_days:
        raise TrainingDataError(
            f"The window has {len(days)} {spec.partition}(s); it needs more than holdout_days={holdout_days}"
        )
    holdout_start = days[-held_out_partitions(rows_per_day.tolist(), holdout_days, min_holdout_rows)]
    return frame[event_day < holdout_start], frame[event_day >= holdout_start]


def held_out_partitions(rows_per_partition: list[int], holdout_days: int, min_holdout_rows: int) -> int:
    """How many of the newest partitions (rows per partition, oldest first) are held out: at least
    `holdout_days`, more until they hold `min_holdout_rows` rows, never more than half."""
    held = holdout_days
    rows_from_end = np.cumsum(rows_per_partition[::-1])
    while held < len(rows_per_partition) // 2 and rows_from_end[held - 1] < min_holdout_rows:
        held += 1
    return held


def window_rows_wanted(training: TrainingSettings) -> int:
    """Labelled rows a training window takes back earlier partitions for."""
    return max(training.min_train_rows, training.train_window_rows)


def earlier_partitions_needed(frame: pd.DataFrame, spec: DatasetSpec, training: TrainingSettings) -> int:
    """How many earlier partitions, at the window's mean rows per partition, `frame` needs to hold
    `window_rows_wanted` and a holdout of `min_holdout_rows` (0: it does)."""
    counts = spec.partitioning.floor_times(frame[spec.time_column]).value_counts().sort_index().tolist()
    mean = max(1, round(sum(counts) / max(1, len(counts))))

    def enough(rows: list[int]) -> bool:
        held = held_out_partitions(rows, training.holdout_days, training.min_holdout_rows)
        return sum(rows) >= window_rows_wanted(training) and sum(rows[-held:]) >= training.min_holdout_rows

    needed = 0
    while not enough([mean] * needed + counts):
        needed += 1
    return needed


def check_training_rows(frame: pd.DataFrame, window: str, min_rows: int) -> None:
    """A window with fewer labelled rows than `min_rows` trains nothing (a model fitted on a few
    dozen rows is noise, or a constant)."""
    if len(frame) < min_rows:
        raise TrainingDataError(
            f"The window {window} holds {len(frame)} labelled rows that pass the gate, fewer than "
            f"INFERLOOP_MIN_TRAIN_ROWS={min_rows}: waiting for more labels (or widen "
            "INFERLOOP_TRAIN_WINDOW_DAYS)"
        )


# The newest fifth of a window's rows judge the candidate tree sizes: enough rows to rank them on
# a window of a few thousand, and the newest, because the model will serve what comes next.
CAPACITY_VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class CapacityChoice:
    """The tree size a window's model is fitted with, and why: each candidate's log loss on the
    window's newest rows, or why there was no search."""

    leaf_nodes: int
    log_losses: dict[int, float]
    no_search: str = ""

    @property
    def reason(self) -> str:
        if not self.log_losses:
            return f"{self.leaf_nodes} leaves (no search: {self.no_search})"
        tried = ", ".join(f"{leaves}: {loss:.4f}" for leaves, loss in self.log_losses.items())
        return f"{self.leaf_nodes} leaves, lowest log loss on the window's newest rows ({tried})"


def leaf_node_candidates(training: TrainingSettings) -> list[int]:
    """Tree sizes the capacity search tries: doubling from the fewest leaves to the most."""
    candidates, leaves = [], min(training.model_min_leaf_nodes, training.model_max_leaf_nodes)
    while leaves < training.model_max_leaf_nodes:
        candidates.append(leaves)
        leaves *= 2
    return [*candidates, training.model_max_leaf_nodes]


def chosen_capacity(
    frame: pd.DataFrame, spec: DatasetSpec, training: TrainingSettings | None = None
) -> CapacityChoice:
    """The tree size for a model of `frame`: each candidate is fitted on the window's older rows
    and the one with the lowest log loss on its newest rows (`CAPACITY_VALIDATION_SHARE`) wins.
    A window of a few thousand rows overfits trees sized for millions (Elec2's weekly retrains on
    2,000-row windows: 0.781 accuracy with 31 leaves, 0.790 with 5 or chosen this way; measured
    in docs/benchmarks.md), and a feed of millions of rows needs the larger trees: no one size
    suits every feed. With one size to try, or too few rows of a class on either side of the split
    to fit (the booster's early stopping keeps both classes aside) or judge on, the most leaves
    are used (no search)."""
    training = training or TrainingSettings.model_construct()
    candidates = leaf_node_candidates(training)
    if len(candidates) == 1:
        return CapacityChoice(training.model_max_leaf_nodes, {}, "one size to try")
    order = np.argsort(frame[spec.time_column].to_numpy(), kind="stable")
    older, newest = np.split(order, [int(len(order) * (1 - CAPACITY_VALIDATION_SHARE))])
    target = positive_target(frame, spec)
    class_rows = max(2, training.min_class_rows)
    if min(rarer_class_rows(target.to_numpy()[rows]) for rows in (older, newest)) < class_rows:
        return CapacityChoice(
            training.model_max_leaf_nodes,
            {},
            f"the window's older or newest rows hold fewer than {class_rows} of a class",
        )
    from sklearn.metrics import log_loss  # here: scoring imports no fitting code

    features = prepare_features(frame, spec)
    log_losses = {}
    with _fitting_threads(len(older)):
        for leaves in candidates:
            model = build_pipeline(spec, training, leaves).fit(features.iloc[older], target.iloc[older])
            scores = positive_scores(model, features.iloc[newest])
            log_losses[leaves] = float(log_loss(target.iloc[newest], scores, labels=[0, 1]))
    return CapacityChoice(min(log_losses, key=log_losses.__getitem__), log_losses)


def _fitting_threads(rows: int) -> threadpool_limits:
    """Small windows fit on one OpenMP thread (as for scoring, the thread pool costs more than it
    saves there: 4-6x slower on a busy 2-core machine)."""
    return threadpool_limits(1 if rows < SMALL_BATCH_ROWS else None, user_api="openmp")


def fitted(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    training: TrainingSettings | None = None,
    leaf_nodes: int | None = None,
) -> Pipeline:
    """The pipeline fitted on `frame`, its trees `leaf_nodes` leaves at most (None: the size
    `chosen_capacity` picks for `frame`)."""
    target = positive_target(frame, spec)
    if target.nunique() < 2:
        raise TrainingDataError("The training days hold a single class: widen the window")
    if leaf_nodes is None:
        leaf_nodes = chosen_capacity(frame, spec, training).leaf_nodes
    with _fitting_threads(len(frame)):
        return build_pipeline(spec, training, leaf_nodes).fit(prepare_features(frame, spec), target)


@task(name="fit-model")
def fit_model(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    training: TrainingSettings,
    scoring: ScoringSettings,
    monitor_metric: str,
) -> TrainingResult:
    """Fit on the earlier days and measure on the held-out latest days, at the version's decision
    threshold chosen there for `monitor_metric` (`choose_threshold`); then (`refit_on_full_window`)
    fit again on the whole window, so the deployed model has seen the newest labels. The held-out
    metrics, scores and threshold stay those of the validation fit: the refitted model has no
    honest holdout."""
    train, holdout = split_by_time(frame, spec, training.holdout_days, training.min_holdout_rows)
    capacity = chosen_capacity(train, spec, training)  # on the training days: the holdout stays unseen
    model = fitted(train, spec, training, capacity.leaf_nodes)
    holdout_target = positive_target(holdout, spec).to_numpy()
    holdout_scores = positive_scores(model, prepare_features(holdout, spec))
    deployed_on = frame if training.refit_on_full_window else train  # the rows the version is fitted on
    label_rate = float(positive_target(deployed_on, spec).mean())
    choice = choose_threshold(
        holdout_target, holdout_scores, monitor_metric, scoring, training.min_holdout_rows, label_rate
    )
    metrics = classification_metrics(holdout_target, holdout_scores, choice.threshold)
    if training.refit_on_full_window:
        model = fitted(frame, spec, training, capacity.leaf_nodes)
    train_features = prepare_features(deployed_on, spec)
    day = spec.partitioning.keys_of(frame[spec.time_column])
    return TrainingResult(
        model=model,
        metrics=metrics,
        params={
            **model_params(training, capacity.leaf_nodes),
            "leaf_nodes_choice": capacity.reason,
            "holdout_days": day[holdout.index].nunique(),
            "holdout_rarer_class_rows": rarer_class_rows(holdout_target),
            "decision_threshold": choice.threshold,
            "threshold_choice": choice.reason,
            "refit_on_full_window": training.refit_on_full_window,
        },
        train_rows=len(train),
        holdout_rows=len(holdout),
        train_end=day[train.index].max(),
        holdout_start=day[holdout.index].min(),
        input_example=personal_values_withheld(as_plain_columns(train_features.head(5)), spec),
        holdout_target=holdout_target,
        holdout_scores=holdout_scores,
        holdout_ids=holdout[spec.id_column].to_numpy(),
        profile=reference_profile(train_features, positive_scores(model, train_features), spec),
        refitted=training.refit_on_full_window,
        threshold=choice,
    )
