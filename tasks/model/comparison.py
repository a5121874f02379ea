"""How sure a comparison of two models on the same rows is: a paired, day-block bootstrap.

Rows of one day are not independent (the same weather, the same market), so resampling rows
would overstate the evidence; resampling whole partitions keeps their correlation, and on a feed
of sub-daily partitions whole days (the hours of one day share its regime: one hour's rows are
no more independent of the next hour's than of each other), wherever the rows span enough days
to resample. Both models
are scored on the same resampled rows, so what they agree on cancels out (a paired comparison).
A resample is a weight per row (how often it was drawn), so each costs a few vectorised passes
over the rows, not a sort or a copy: long replays stay cheap.
"""

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import pandas as pd

RESAMPLES = 400
MIN_BLOCKS = 10  # fewer partitions than this: their spread says little, resample rows within each
SEED = 0
# One minus the Brier score: a proper score of the probabilities on every row, higher is better.
PROBABILITY_SCORE = "1-brier"
METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "pr_auc", PROBABILITY_SCORE)
# Metrics that weigh each class on its own: their evidence is the rarer class's rows (a ROC AUC
# on 3 positives is a coin flip however many negatives surround them).
CLASS_METRICS = frozenset({"balanced_accuracy", "f1", "roc_auc", "pr_auc"})


@dataclass(frozen=True)
class MetricDifference:
    """`metric` of model A minus model B on the same rows, with a bootstrap interval."""

    metric: str
    a: float
    b: float
    difference: float
    lower: float  # the interval's bounds at `confidence` (two-sided)
    upper: float
    confidence: float
    rows: int
    groups: int  # blocks resampled
    rarer_class_rows: int = -1  # rows of the rarer class among `rows` (-1: not counted)
    block: str = "partition"  # what a block is: a partition, or a day of sub-daily partitions

    @property
    def verdict(self) -> str:
        """'clearly better' / 'clearly worse' (A than B) only when the whole interval is on one
        side of 0 (every metric here is higher-is-better)."""
        if self.lower > 0:
            return "clearly better"
        if self.upper < 0:
            return "clearly worse"
        return "no clear difference"

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.metric} {self.a:.4f} vs {self.b:.4f} ({self.difference:+.4f}, "
            f"{self.confidence:.0%} interval {self.lower:+.4f}..{self.upper:+.4f}, "
            f"{self.rows} rows in {self.groups} {self.block}s"
            + (f", {self.rarer_class_rows} of the rarer class)" if self.rarer_class_rows >= 0 else ")")
        )


def comparable_metric(metric: str, target: np.ndarray, min_class_rows: int) -> str:
    """`metric`, or the probability score when `metric` weighs each class and `target` holds
    fewer than `min_class_rows` of the rarer class: then it would rest on a handful of rows,
    while the probabilities' score rests on all of them."""
    if metric in CLASS_METRICS and rarer_class_rows(target) < min_class_rows:
        return PROBABILITY_SCORE
    return metric


def rarer_class_rows(target: np.ndarray) -> int:
    """Rows of the rarer class among 0/1 `target`."""
    positives = int(np.count_nonzero(target))
    return min(positives, len(target) - positives)


class WeightedScores:
    """One model's scores, prepared once (threshold decisions, score order and ties) so its
    metric under any row weights is a few vectorised passes."""

    def __init__(self, target: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray):
        scores = np.asarray(scores, dtype=np.float64)
        self.positive = np.asarray(target).astype(bool)
        self.squared_error = (scores - self.positive) ** 2
        self.predicted = scores >= threshold
        self.order = np.argsort(-scores, kind="stable")  # highest score first
        ranked = scores[self.order]
        self.tie_starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        self.ranked_positive = self.positive[self.order]

    def metric(self, name: str, weights: np.ndarray) -> float:
        """`name` (one of METRICS) as scikit-learn computes it with `sample_weight=weights`;
        NaN when it is undefined (no rows, or a single class for the ranking metrics and
        balanced accuracy)."""
        total = float(np.sum(weights))
        if total == 0:
            return float("nan")
        if name == "accuracy":
            return float(np.sum(weights * (self.predicted == self.positive)) / total)
        if name == PROBABILITY_SCORE:
            return 1.0 - float(np.sum(weights * self.squared_error) / total)
        positives = float(np.sum(weights[self.positive]))
        negatives = float(np.sum(weights[~self.positive]))
        if name in ("balanced_accuracy", "f1"):
            true_pos = float(np.sum(weights[self.predicted & self.positive]))
            false_pos = float(np.sum(weights[self.predicted & ~self.positive]))
            if name == "f1":
                denominator = 2 * true_pos + false_pos + (positives - true_pos)
                return 2 * true_pos / denominator if denominator > 0 else 0.0
            if positives == 0 or negatives == 0:
                return float("nan")
            return (true_pos / positives + (negatives - false_pos) / negatives) / 2
        if positives == 0 or negatives == 0:
            return float("nan")
        ranked = weights[self.order]
        pos_at = np.add.reduceat(ranked * self.ranked_positive, self.tie_starts)  # per distinct score
        neg_at = np.add.reduceat(ranked * ~self.ranked_positive, self.tie_starts)
        if name == "roc_auc":
            neg_below = negatives - np.cumsum(neg_at)  # negatives scored strictly lower
            return float(np.sum(pos_at * (neg_below + neg_at / 2)) / (positives * negatives))
        if name == "pr_auc":  # average precision: precision at each threshold, weighted by recall gained
            true_pos, flagged = np.cumsum(pos_at), np.cumsum(pos_at + neg_at)
            precision = np.divide(true_pos, flagged, out=np.zeros_like(true_pos), where=flagged > 0)
            return float(np.sum(pos_at * precision) / positives)
        raise ValueError(f"No weighted form of the metric {name!r}: use one of {', '.join(METRICS)}")


def bootstrap_blocks(groups: np.ndarray) -> tuple[np.ndarray, str]:
    """What to resample: `groups` (partition keys), or their days where the keys are sub-daily
    times (several keys share a day) and span at least MIN_BLOCKS days; with fewer days the
    partitions' own spread is the better estimate than none."""
    if not len(groups) or not (groups.dtype.kind == "M" or isinstance(groups[0], date | str)):
        return groups, "partition"
    times = pd.to_datetime(pd.Series(groups), errors="coerce")  # ISO keys, as hindsight passes them
    if times.isna().any():
        return groups, "partition"
    days = times.dt.normalize().to_numpy()
    distinct_days = len(np.unique(days))
    if distinct_days < len(np.unique(groups)) and distinct_days >= MIN_BLOCKS:
        return days, "day"
    return groups, "partition"


def resampled_weights(
    group_of_row: np.ndarray, members: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """One bootstrap resample as a weight per row: with MIN_BLOCKS groups or more, how often the
    row's group was drawn (whole groups, with replacement); with fewer, how often the row was
    drawn within its own group (a multinomial draw of the group's size)."""
    if len(members) >= MIN_BLOCKS:
        drawn = np.bincount(rng.integers(0, len(members), len(members)), minlength=len(members))
        return drawn[group_of_row].astype(np.float64)
    weights = np.zeros(len(group_of_row))
    for rows in members:
        weights[rows] = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)))
    return weights


def paired_difference(
    metric: str,
    target: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    groups: np.ndarray,
    threshold: float | np.ndarray,
    confidence: float = 0.8,
    resamples: int = RESAMPLES,
    threshold_b: float | np.ndarray | None = None,
) -> MetricDifference:
    """`metric`(A) - `metric`(B) on the same rows, resampling whole groups (partitions, or the
    days of sub-daily ones: `bootstrap_blocks`) with replacement, or rows within each group when
    there are fewer than MIN_BLOCKS groups.
    Each model labels rows at its own decision threshold: `threshold` for A, `threshold_b` for B
    (default: A's); either may be one per row (rows scored by different versions).
    Deterministic (numpy Generator seeded SEED). Resamples where the metric is undefined are
    skipped; the interval is NaN when every one is."""
    if metric not in METRICS:
        raise ValueError(f"Cannot compare models on {metric!r}: use one of {', '.join(METRICS)}")
    target, scores_a, scores_b, groups = (np.asarray(x) for x in (target, scores_a, scores_b, groups))
    if not len(target) == len(scores_a) == len(scores_b) == len(groups):
        raise ValueError(
            f"A paired comparison needs one target, two scores and one group per row; got "
            f"{len(target)}, {len(scores_a)}, {len(scores_b)} and {len(groups)}"
        )
    groups, block = bootstrap_blocks(groups)
    labels, group_of_row = np.unique(groups, return_inverse=True)
    group_of_row = group_of_row.reshape(-1)
    sizes = np.bincount(group_of_row, minlength=len(labels))
    members = np.split(np.argsort(group_of_row, kind="stable"), np.cumsum(sizes)[:-1]) if len(sizes) else []
    scored_a = WeightedScores(target, scores_a, threshold)
    scored_b = WeightedScores(target, scores_b, threshold if threshold_b is None else threshold_b)
    everything = np.ones(len(target))
    a, b = scored_a.metric(metric, everything), scored_b.metric(metric, everything)
    rng = np.random.default_rng(SEED)
    differences = np.empty(resamples)
    for i in range(resamples):
        weights = resampled_weights(group_of_row, members, rng)
        differences[i] = scored_a.metric(metric, weights) - scored_b.metric(metric, weights)
    differences = differences[np.isfinite(differences)]
    tail = (1 - confidence) / 2
    lower, upper = np.quantile(differences, [tail, 1 - tail]) if len(differences) else (np.nan, np.nan)
    return MetricDifference(
        metric,
        a,
        b,
        a - b,
        float(lower),
        float(upper),
        confidence,
        len(target),
        len(members),
        rarer_class_rows(target),
        block,
    )
