"""Has the champion's performance changed since it was deployed? Evidence, not a fixed drop.

A fixed drop below the validation value misfires both ways: validated on a few dozen rows, the
reference is noise (small feeds retrain every week), and a model that degrades slowly or was
never good never crosses it. Instead the champion's own per-row losses, in event order since it
became champion, go through ADWIN (river), which keeps the longest recent window whose mean is
consistent and reports a change when two sub-windows differ beyond a bound set by `delta` and
the number of rows: the evidence needed grows with noise, shrinks with volume, and no reference
value has to be guessed. Only an increase of the loss counts.

Losses follow the monitored metric: the 0/1 error at the decision threshold for accuracy; for
balanced accuracy and F1 the error on positives and on negatives separately, and for the ranking
metrics (ROC/PR AUC: how far apart the two classes' scores are) the squared error of the score
on each class separately: a rising miss rate hides inside a stable overall loss when positives
are rare. A second check needs no history: the label rate against the mean predicted
probability (a model that predicts the majority class for everyone is caught here).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.storage import Storage
from inferloop.tasks.monitoring.performance import labelled_predictions

MAX_PARTITIONS = 365  # how far back "since deployment" reads


@dataclass
class ChangeVerdict:
    """What the change detector saw in one loss stream of the champion."""

    stream: str  # "error", "error on positives" / "negatives", "squared error on positives" / ...
    rows: int
    changed: bool
    loss_before: float | None = None  # mean loss of the older part when a change was found
    loss_after: float | None = None  # of the recent part ADWIN kept
    changed_at_event_day: str | None = None
    loss_at_change: float | None = None  # of the recent part when the change was found
    rows_after: int = 0  # labelled rows (as sampled, both classes) from the change on: what a retrain has

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        evidence = f"{self.rows} labelled rows since deployment"
        if self.loss_at_change is None or self.loss_after > self.loss_before:
            return (
                f"{self.stream} rose from {self.loss_before:.3f} to {self.loss_after:.3f} "
                f"(change detected at event day {self.changed_at_event_day}, {evidence})"
            )
        # Still a trigger: dropping these retrains cost Elec2's loop 0.005 accuracy (docs/benchmarks.md).
        return (
            f"{self.stream} changed at event day {self.changed_at_event_day}: {self.loss_before:.3f} "
            f"before, {self.loss_at_change:.3f} at the change, {self.loss_after:.3f} since ({evidence})"
        )


# A replay re-enacts history: a partition, once scored and labelled, stays as it is under it, so
# a champion's history is read once, not again at every partition: up to MAX_PARTITIONS reads
# each, about 60 % of an hourly replay's monitoring. Kept for the version asked about last (a
# replay's champion, until it is replaced): the sampled frame of each partition in its reach.
_PAST_PARTITIONS: ContextVar[dict | None] = ContextVar("inferloop_past_partitions", default=None)


@contextmanager
def past_partitions_fixed() -> Iterator[None]:
    """Within it, `since_deployment` reads each past partition of a version from the lake once
    (for a replay; a monitor run outside one reads them every time)."""
    token = _PAST_PARTITIONS.set({})
    try:
        yield
    finally:
        _PAST_PARTITIONS.reset(token)


def since_deployment(
    storage: Storage,
    spec: DatasetSpec,
    model_name: str,
    version: str,
    until: date,
    max_rows_per_partition: int,
) -> pd.DataFrame:
    """The champion's labelled predictions in event order since it was deployed (the latest
    MAX_PARTITIONS it scored up to `until`), at most `max_rows_per_partition` per partition (a
    seeded sample keeps big feeds cheap)."""
    listed = storage.list_partitions(catalog.version_predictions(model_name, version))
    days = [d for d in listed if d <= until][-MAX_PARTITIONS:]
    past, key = _PAST_PARTITIONS.get(), (storage.root_uri, model_name, version, max_rows_per_partition)
    known = {} if past is None else past.get(key, {})
    read = {}
    for day in days:
        if (frame := known.get(day)) is None:
            frame = sampled(
                labelled_predictions(storage, spec, model_name, version, [day]), max_rows_per_partition
            )
        read[day] = frame
    if past is not None:  # only what the next call can ask for: this version's reach
        past.clear()
        past[key] = read
    frames = [frame for frame in read.values() if not frame.empty]
    if not frames:
        return labelled_predictions(storage, spec, model_name, version, [])
    return pd.concat(frames, ignore_index=True).copy()  # a copy: callers never touch what is kept


def sampled(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most `rows` of one partition's `frame`, drawn with a fixed seed, in their order."""
    if len(frame) <= rows:
        return frame
    kept = np.sort(np.random.default_rng(0).choice(len(frame), rows, replace=False))
    return frame.iloc[kept].reset_index(drop=True)


def loss_streams(frame: pd.DataFrame, metric: str, threshold: float) -> dict[str, pd.DataFrame]:
    """The per-row losses that move `metric`, each with its event day."""
    target = frame["target"].to_numpy()
    scores = frame["score"].to_numpy(np.float64)
    error = ((scores >= threshold).astype(int) != target).astype(float)
    if metric == "accuracy":
        return {"error": frame[["event_day"]].assign(loss=error)}
    name, loss = (
        ("squared error", (scores - target) ** 2) if metric in ("roc_auc", "pr_auc") else ("error", error)
    )
    return {
        f"{name} on {label}": frame.loc[target == value, ["event_day"]].assign(loss=loss[target == value])
        for label, value in (("positives", 1), ("negatives", 0))
    }


def detect_increase(stream: str, losses: pd.DataFrame, delta: float) -> ChangeVerdict:
    """Run ADWIN over the losses; report the last change that raised the mean loss. A cut can
    keep only a short burst of errors, after which the rows average no worse than before it: that
    is still reported (the errors changed regime), and described as such rather than as a rise."""
    from river.drift import ADWIN  # here: only monitoring needs it

    detector = ADWIN(delta=delta)
    verdict = ChangeVerdict(stream, len(losses), False)
    for loss, event_day in zip(losses["loss"].to_numpy(), losses["event_day"], strict=True):
        before = detector.estimation
        detector.update(float(loss))
        if detector.drift_detected and detector.estimation > before:
            verdict.changed = True
            verdict.loss_before, verdict.loss_at_change = float(before), float(detector.estimation)
            verdict.changed_at_event_day = str(event_day)
        elif detector.drift_detected:  # the loss fell: the champion got better, nothing to act on
            verdict.changed = False
    if verdict.changed:
        verdict.loss_after = float(detector.estimation)
    return verdict


def performance_changes(
    frame: pd.DataFrame, metric: str, threshold: float, delta: float
) -> list[ChangeVerdict]:
    """A verdict per loss stream of `metric` (empty when nothing is labelled yet)."""
    if frame.empty:
        return []
    verdicts = [
        detect_increase(stream, losses, delta)
        for stream, losses in loss_streams(frame, metric, threshold).items()
        if len(losses)
    ]
    event_days = frame["event_day"].astype(str)
    for verdict in verdicts:
        if verdict.changed:  # every labelled row from then on, whatever its class
            verdict.rows_after = int((event_days >= verdict.changed_at_event_day).sum())
    return verdicts


def calibration_gap(target: np.ndarray, scores: np.ndarray, alpha: float) -> str | None:
    """A sentence when the label rate is incompatible with the predicted probabilities (a
    two-sided binomial test at `alpha`) and off by more than 5 points; else None."""
    from scipy.stats import binomtest

    rows = len(target)
    if rows == 0:
        return None
    expected = float(np.clip(scores.mean(), 1e-6, 1 - 1e-6))
    positives = int(target.sum())
    if abs(positives / rows - expected) <= 0.05:
        return None
    if binomtest(positives, rows, expected).pvalue >= alpha:
        return None
    return (
        f"calibration: labels hold {positives / rows:.1%} positives over {rows} rows while the champion "
        f"predicts {expected:.1%} on average"
    )
