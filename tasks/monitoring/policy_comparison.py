"""Does the loop pay on this history? The loop against the natural baselines, on the same rows.

Every policy scores exactly the rows the loop scored and whose labels arrived, with the same
label delay: the first model kept forever, and periodic baselines that retrain every k
partitions (a cron, no monitoring, no promotion step) on the `train_window_days` labelled days
the loop could have seen at that moment. A verdict says whether the loop is better, worse or
indistinguishable, by a paired day-block bootstrap.
"""

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.periods import parse_key
from inferloop.core.settings import TrainingSettings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import MissingDataError, load_labelled_day, positive_target, prepare_features
from inferloop.tasks.gate.partition_gate import gate_refused
from inferloop.tasks.model.comparison import MetricDifference, paired_difference
from inferloop.tasks.model.prediction import positive_scores
from inferloop.tasks.model.training import fitted, window_rows_wanted
from inferloop.tasks.monitoring.hindsight import judge
from inferloop.tasks.monitoring.performance import label_metrics
from inferloop.tasks.monitoring.replay import (
    ReplayDay,
    loop_row_features,
    no_predictions,
    row_thresholds,
    scored,
)
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision

LOOP = "inferloop loop"
FIRST_MODEL = "first model kept"
MAX_PERIODS = 24  # points per line of the metric-over-time chart
VERDICT_CONFIDENCE = 0.9  # the interval that must lie entirely above (or below) 0 for a clear verdict
VERDICT_RESAMPLES = 1000


def periodic_policy(every: int) -> str:
    return "retrain every partition" if every == 1 else f"retrain every {every} partitions"


@dataclass
class PolicyResult:
    """One policy over the replay: its metrics on the loop's labelled rows and what it cost."""

    policy: str
    rows: int
    metrics: dict[str, float]  # as `label_metrics` returns them
    retrains: int = 0
    promotions: int = 0
    compute_seconds: float = 0.0  # spent fitting (and, for the loop, promoting) models
    hindsight: str = ""  # the loop's promotions judged on the rows that followed them
    rejections: str = ""  # the challengers the loop rejected, judged on the rows that followed


@dataclass
class PolicyComparison:
    dataset: str
    start: str
    end: str
    monitor_metric: str
    label_delay_days: int
    train_window_days: int
    policies: list[PolicyResult]
    over_time: list[dict]  # {period, policy, value (of monitor_metric), rows}
    verdict: str
    partition: str = "day"  # the unit of the label delay and the training window
    train_window_rows: int = 0  # the rows windows widen to (0: not widened)
    saved_to: dict[str, str] = field(default_factory=dict)  # table, json, chart -> URI

    def to_dict(self) -> dict:
        return asdict(self)

    def policy(self, name: str) -> PolicyResult:
        return next(p for p in self.policies if p.policy == name)


@dataclass(frozen=True)
class Effort:
    """What a policy spent over the replay: retrains, promotions, seconds fitting models."""

    retrains: int
    promotions: int
    compute_seconds: float
    hindsight: str = ""
    rejections: str = ""


def loop_effort(
    ledger: list[RetrainDecision],
    judged: dict[str, str] | None = None,
    rejections_judged: list[str] | None = None,
) -> Effort:
    """The loop's effort, from its retrain ledger over the replay, how its promotions did in
    hindsight (`judged`: champion version -> verdict) and how the challengers it rejected would
    have done (`rejections_judged`: their verdicts, `rejections_in_hindsight`)."""
    return Effort(
        retrains=sum(d.action == "retrain" for d in ledger),
        promotions=sum(" promote:" in d.outcome for d in ledger),
        # Recorded by the retrain flow (training and promotion); older ledgers read as 0.
        compute_seconds=sum(d.compute_seconds for d in ledger),
        hindsight=hindsight_summary(list((judged or {}).values())),
        rejections=hindsight_summary(rejections_judged or []),
    )


REJECTED_OUTCOME = re.compile(r"^v(\d+) reject:")  # how the retrain flow records a rejection


def rejected_challengers(ledger: list[RetrainDecision]) -> list[tuple[str, date]]:
    """(version, partition of the retrain) of every challenger promotion rejected, from the ledger."""
    return [
        (match.group(1), parse_key(d.day)) for d in ledger if (match := REJECTED_OUTCOME.match(d.outcome))
    ]


def rejections_in_hindsight(
    loop: pd.DataFrame,
    rejected: list[tuple[str, date]],
    challenger_scores: Callable[[str, pd.DataFrame], tuple[np.ndarray, float]],
    min_rows: int,
    metric: str,
    threshold: float,
    min_class_rows: int = 0,
) -> list[str]:
    """Would each rejected challenger have done better than the models that served instead?

    Judged as a promotion is in hindsight (`judge`, the same paired bootstrap): on the loop's
    labelled rows (`loop`) of the partitions after the one it was rejected on, the fewest whole
    partitions that hold `min_rows`; a challenger with fewer rows after it by the end is not
    judged. `challenger_scores(version, rows)` gives the version's scores of `rows`, in their
    order, and its decision threshold; the loop's rows keep their own (`row_thresholds`).
    "better": the challenger would have done clearly better, the rejection cost the loop."""
    verdicts = []
    for version, day in rejected:
        after = loop[loop["event_day"] > day]
        rows_by_day = after.groupby("event_day", sort=True).size()
        enough = rows_by_day.cumsum().searchsorted(min_rows)  # the partition that reaches min_rows
        if enough >= len(rows_by_day):
            continue
        rows = after[after["event_day"] <= rows_by_day.index[enough]]
        scores, challenger_threshold = challenger_scores(version, rows)
        verdict, _ = judge(
            rows["target"].to_numpy(),
            scores,
            rows["score"].to_numpy(np.float64),
            rows["event_day"].astype(str).to_numpy(),
            metric,
            challenger_threshold,
            row_thresholds(rows, threshold),
            min_class_rows,
        )
        verdicts.append(verdict)
    return verdicts


def hindsight_summary(verdicts: list[str]) -> str:
    """'2 better, 1 no clear difference, 1 worse' (counts of final verdicts), or 'none judged'."""
    counts = Counter(verdicts)
    order = ("better", "no clear difference", "worse")
    return ", ".join(f"{counts[v]} {v}" for v in order if counts[v]) or "none judged"


@dataclass(frozen=True)
class TrainingWindow:
    """One retrain of a periodic baseline: from which day its model scored, and on what."""

    first_scored: str
    first_day: str
    last_day: str
    days_used: int
    rows: int


@dataclass
class BaselineRun:
    """A periodic baseline's predictions on the loop's rows, and its retrains."""

    every: int
    model: object
    frames: list[pd.DataFrame] = field(default_factory=list)
    windows: list[TrainingWindow] = field(default_factory=list)
    compute_seconds: float = 0.0

    @property
    def retrains(self) -> int:
        return len(self.windows)

    def predictions(self, spec: DatasetSpec) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True) if self.frames else no_predictions(spec)


class LabelledDays:
    """Labelled days read once per comparison; None for a day that is missing or that the gate
    refused (or that lacks the spec's columns). Windows only move forward, so days before the
    current window are forgotten: memory holds one window."""

    def __init__(self, storage: Storage, spec: DatasetSpec):
        self.storage, self.spec = storage, spec
        self.days: dict[date, pd.DataFrame | None] = {}
        self.reads = 0

    def day(self, day: date) -> pd.DataFrame | None:
        if day not in self.days:
            self.days[day] = self._read(day)
        return self.days[day]

    def _read(self, day: date) -> pd.DataFrame | None:
        if any(gate_refused(self.storage, self.spec, purpose, day) for purpose in ("inference", "training")):
            return None
        try:
            frame = load_labelled_day(self.storage, self.spec, day)
        except MissingDataError:
            return None
        self.reads += 1
        needed = [*self.spec.feature_columns, self.spec.label.column]
        return frame if set(needed) <= set(frame.columns) else None

    def window(
        self, first: date, last: date, min_rows: int = 0, earliest: date | None = None
    ) -> tuple[pd.DataFrame | None, int, date]:
        """All labelled rows of `first`..`last` (None if none), how many days held some, and the
        window's first day: earlier days are taken back, down to `earliest`, until the window holds
        `min_rows` (the loop's own training windows widen the same way)."""
        frames = [self.day(key) for key in self.spec.partitioning.keys(first, last)]
        frames = [f for f in frames if f is not None and not f.empty]
        rows = sum(len(f) for f in frames)
        while rows < min_rows and earliest is not None and first > earliest:
            first = self.spec.partitioning.shift(first, -1)
            if (earlier := self.day(first)) is not None and not earlier.empty:
                frames.insert(0, earlier)
                rows += len(earlier)
        for day in [d for d in self.days if d < first]:
            del self.days[day]
        return (pd.concat(frames, ignore_index=True) if frames else None), len(frames), first


def periodic_baselines(
    storage: Storage,
    spec: DatasetSpec,
    first_model,
    loop: pd.DataFrame,
    days: list[date],
    every: list[int],
    train_window_days: int,
    training: TrainingSettings | None = None,
) -> list[BaselineRun]:
    """For each k in `every`, a cron that retrains every k partitions, replayed over `days`.

    Day index 0 (and every day before its first retrain) is scored by `first_model`, the loop's
    first champion. At day indices k, 2k, ... it fits the project's pipeline on all rows of the
    `train_window_days` labelled days ending at d - 1 - delay, widened like the loop's windows to
    `train_window_rows` (`training`; None: not widened): what the loop knew when it scored
    d (the monitor of d - 1 saw the labels that had arrived by then). Days that are missing or
    refused are skipped; a window with no rows or a single class keeps the previous model (only
    fits count as retrains). The rows the loop did not train on because the gate quarantined
    them are trained on here. Each baseline then scores the rows the loop scored on day d and
    whose labels arrived (`loop`: id, score, target, event_day). Baselines due on the same day
    share one fit (same rows, same seed: the same model), and each is charged its time.
    """
    runs = [BaselineRun(k, first_model) for k in every]
    labelled = LabelledDays(storage, spec)
    stored = storage.list_partitions(catalog.features_table(spec.name))
    earliest = stored[0] if stored else None
    min_rows = window_rows_wanted(training) if training is not None else 0
    loop_days = {day: rows for day, rows in loop.groupby("event_day")}
    for index, day in enumerate(days):
        due = [run for run in runs if index > 0 and index % run.every == 0]
        if due:
            last = spec.partitioning.shift(day, -(1 + spec.label.delay_days))
            first = spec.partitioning.shift(last, -(train_window_days - 1))
            frame, days_used, first = labelled.window(first, last, min_rows, earliest)
            target = positive_target(frame, spec) if frame is not None else None
            if target is not None and target.nunique() == 2:
                started = time.perf_counter()
                model = fitted(frame, spec, training)  # the loop's model settings, e.g. its size
                seconds = time.perf_counter() - started
                window = TrainingWindow(
                    day.isoformat(), first.isoformat(), last.isoformat(), days_used, len(frame)
                )
                for run in due:
                    run.model = model
                    run.windows.append(window)
                    run.compute_seconds += seconds
        if day in loop_days:
            features = loop_row_features(storage, spec, day, loop_days[day])
            prepared = prepare_features(features, spec)
            for run in runs:
                run.frames.append(scored(spec, features, positive_scores(run.model, prepared)))
    return runs


def periodic_baseline(
    storage: Storage,
    spec: DatasetSpec,
    first_model,
    loop: pd.DataFrame,
    days: list[date],
    every: int,
    train_window_days: int,
) -> BaselineRun:
    """One periodic baseline (see `periodic_baselines`)."""
    return periodic_baselines(storage, spec, first_model, loop, days, [every], train_window_days)[0]


def in_row_order(predictions: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Every policy's rows in one order (event day, id), so they can be paired row by row."""
    return predictions.sort_values(["event_day", spec.id_column], kind="stable", ignore_index=True)


def policy_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float]:
    """The metrics of a policy's rows, each labelled at its model's threshold (`row_thresholds`:
    the loop's versions and the first model their own, the periodic baselines `threshold`)."""
    if predictions.empty:
        return {}
    return label_metrics(
        predictions["target"].to_numpy(),
        predictions["score"].to_numpy("float64"),
        row_thresholds(predictions, threshold),
    )


def periods(days: list[date], most: int = MAX_PERIODS) -> list[list[date]]:
    """`days` cut into at most `most` consecutive periods of equal length (the last may be shorter)."""
    length = max(1, math.ceil(len(days) / most))
    return [days[i : i + length] for i in range(0, len(days), length)]


def period_label(period: list[date]) -> str:
    return period[0].isoformat() if len(period) == 1 else f"{period[0]}..{period[-1]}"


def metric_over_time(
    predictions: dict[str, pd.DataFrame], days: list[date], metric: str, threshold: float
) -> list[dict]:
    """Per period and policy, `metric` on that period's rows (None when it has none, or one class
    for a ranking metric)."""
    points = []
    for period in periods(days):
        for policy, frame in predictions.items():
            rows = frame[frame["event_day"].isin(period)]
            value = policy_metrics(rows, threshold).get(metric)
            points.append(
                {"period": period_label(period), "policy": policy, "value": value, "rows": len(rows)}
            )
    return points


def paired_policies(a: pd.DataFrame, b: pd.DataFrame, metric: str, threshold: float) -> MetricDifference:
    """metric(a) - metric(b) with its bootstrap interval over event days (`paired_difference`).
    `a` and `b` hold the same rows in the same order (columns score, target, event_day), each
    scored by its own policy."""
    same_rows = len(a) == len(b) and all(
        np.array_equal(a[column].to_numpy(), b[column].to_numpy()) for column in ("target", "event_day")
    )
    if not same_rows:
        raise ValueError("A paired bootstrap needs both policies scored on the same rows, in the same order")
    return paired_difference(
        metric,
        a["target"].to_numpy(),
        a["score"].to_numpy(),
        b["score"].to_numpy(),
        a["event_day"].to_numpy(),
        row_thresholds(a, threshold),
        confidence=VERDICT_CONFIDENCE,
        resamples=VERDICT_RESAMPLES,
        threshold_b=row_thresholds(b, threshold),
    )


def _versus(
    prefix: str, baseline: PolicyResult, metric: str, paired: MetricDifference, partition: str
) -> str:
    cost = f" with {baseline.retrains} retrains" if baseline.policy != FIRST_MODEL else ""
    if round(paired.difference, 3) == 0:
        gap = "the loop is level with it"
    else:
        gap = f"the loop is {'better' if paired.difference > 0 else 'worse'} by {abs(paired.difference):.3f}"
    bounds = f"{paired.lower:+.3f}..{paired.upper:+.3f}"
    blocks = partition if paired.block == "partition" else paired.block
    interval = f"{paired.confidence:.0%} interval {bounds} over {paired.groups} {blocks}s"
    return (
        f"{prefix}{baseline.policy}: {baseline.metrics[metric]:.3f}{cost}, {gap} "
        f"({paired.verdict}: {interval})"
    )


def verdict(
    policies: list[PolicyResult],
    predictions: dict[str, pd.DataFrame],
    metric: str,
    threshold: float,
    partition: str = "day",
) -> str:
    """One sentence: the loop against the best periodic baseline and against the first model
    kept, each difference judged by a paired bootstrap of event partitions on the same rows."""
    by_name = {p.policy: p for p in policies}
    loop = by_name[LOOP]
    if metric not in loop.metrics:
        return (
            f"The loop's {metric} cannot be measured on its {loop.rows} labelled rows (a single class): "
            "no verdict."
        )
    parts = [f"The loop: {metric} {loop.metrics[metric]:.3f} with {loop.retrains} retrains"]
    periodic = [p for p in policies if p.policy not in (LOOP, FIRST_MODEL)]
    if periodic:
        best = max(periodic, key=lambda p: (p.metrics[metric], -p.retrains))
        paired = paired_policies(predictions[LOOP], predictions[best.policy], metric, threshold)
        parts.append(_versus("best periodic baseline, ", best, metric, paired, partition))
    paired = paired_policies(predictions[LOOP], predictions[FIRST_MODEL], metric, threshold)
    parts.append(_versus("", by_name[FIRST_MODEL], metric, paired, partition))
    return "; ".join(parts) + "."


def compare_policies(
    storage: Storage,
    spec: DatasetSpec,
    replayed: list[ReplayDay],
    loop: pd.DataFrame,
    static: pd.DataFrame,
    first_model,
    effort: Effort,
    *,
    baseline_every: list[int],
    train_window_days: int,
    threshold: float,
    monitor_metric: str,
    training: TrainingSettings | None = None,
) -> PolicyComparison:
    """The loop (its predictions `loop` and its `effort`), the first model kept (`static`, the
    same rows) and a periodic baseline per k in `baseline_every`, with the monitored metric over
    time and a verdict. No labelled row scored: no policies, and a verdict that says why."""
    days = [parse_key(d.day) for d in replayed]
    comparison = PolicyComparison(
        dataset=spec.name,
        start=replayed[0].day,
        end=replayed[-1].day,
        monitor_metric=monitor_metric,
        label_delay_days=spec.label.delay_days,
        train_window_days=train_window_days,
        policies=[],
        over_time=[],
        verdict="",
        partition=spec.partition,
        train_window_rows=window_rows_wanted(training) if training is not None else 0,
    )
    if loop.empty:
        refused = sum(d.refused for d in replayed)
        comparison.verdict = (
            f"No partition of {comparison.start}..{comparison.end} was scored with a label to measure "
            f"it ({refused} of {len(replayed)} refused by the gate): nothing to compare."
        )
        return comparison
    baselines = periodic_baselines(
        storage,
        spec,
        first_model,
        loop,
        days,
        sorted(baseline_every, reverse=True),
        train_window_days,
        training,
    )
    predictions = {LOOP: loop, FIRST_MODEL: static} | {
        periodic_policy(run.every): run.predictions(spec) for run in baselines
    }
    predictions = {policy: in_row_order(frame, spec) for policy, frame in predictions.items()}
    effort_of = {LOOP: effort, FIRST_MODEL: Effort(0, 0, 0.0)} | {
        # A cron has no promotion step: every fit replaces the model.
        periodic_policy(run.every): Effort(run.retrains, run.retrains, run.compute_seconds)
        for run in baselines
    }
    comparison.policies = [
        PolicyResult(
            policy,
            len(frame),
            policy_metrics(frame, threshold),
            effort_of[policy].retrains,
            effort_of[policy].promotions,
            effort_of[policy].compute_seconds,
            effort_of[policy].hindsight,
            effort_of[policy].rejections,
        )
        for policy, frame in predictions.items()
    ]
    comparison.over_time = metric_over_time(predictions, days, monitor_metric, threshold)
    comparison.verdict = verdict(comparison.policies, predictions, monitor_metric, threshold, spec.partition)
    return comparison
