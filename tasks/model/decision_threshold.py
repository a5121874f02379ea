"""The decision threshold of a model version, chosen at training for the monitored metric.

With few positives (3-6 % of rows) and a threshold fixed at 0.5, a fresh model labels almost no
row positive: its balanced accuracy sits at 0.5 and its F1 near 0 although it ranks rows well.
`threshold_policy=fitted` chooses each version's threshold for the monitored metric:
- accuracy: the fixed `decision_threshold` (0.5): for calibrated probabilities it already
  maximises expected accuracy (Bayes), and searching the holdout for it cost 3.3 points on the
  following week on Elec2 (0.776 -> 0.743) and gained nothing on feeds with 5 % positives.
  Nor does the champion follow its recent labels once deployed: chosen each day on its last
  week of labels (kept at 0.5 unless worse than the best by more than one standard error), the
  served threshold cost the loop 0.8 points on Elec2's late stretch (0.767 -> 0.759, 24 -> 25
  retrains), and a weekly cron 1.5 points over the whole period (docs/benchmarks.md, session 21);
- balanced accuracy: the training labels' positive rate, its Bayes-optimal threshold for
  calibrated probabilities, with no holdout noise to fit. Next-period balanced accuracy, 0.5 ->
  it: Elec2 0.766 -> 0.769; 5 % positives 0.65 -> 0.80, 0.76 -> 0.86, 0.68 -> 0.82, with 200-row
  holdouts 0.56 -> 0.72, 0.68 -> 0.81, 0.54 -> 0.70 (searching the holdout instead: 0.742 on
  Elec2, and lower on small holdouts);
- F1 (no such closed form): searched on the held-out (newest) rows, guarded against fitting a
  few hundred of them: the fixed threshold stays unless it is worse than the best candidate by
  more than one standard error of F1 on the holdout (a smaller gap is noise); otherwise, of the
  candidates within one standard error of the best (a plateau), the middle one: the arg-max
  alone sits on the plateau's edge, where one more row flips the decision. Next-period F1, 0.5 ->
  searched: 5 % positives 0.43 -> 0.47, 0.65 -> 0.65, 0.51 -> 0.54, with 200-row holdouts
  0.20 -> 0.27, 0.46 -> 0.47, 0.14 -> 0.28; but Elec2 (balanced, drifting) 0.712 -> 0.697.
  Candidates lie half-way between consecutive distinct scores.
Either way, a threshold that does worse than the fixed one on the holdout by more than one
standard error is not taken; fewer than `min_rows` held-out rows, or a single class: the fixed
threshold. (Measured with a plain script: HistGradientBoosting refitted on a 30-day (Elec2) or
7-partition window, the threshold chosen on its newest 5 / 2 partitions, scored on the next 7 / 3.)
"""

from dataclasses import dataclass

import numpy as np

from inferloop.core.settings import ScoringSettings

FITTED_METRICS = ("balanced_accuracy", "f1")  # metrics a version gets a threshold of its own for
EDGE = 1e-6  # thresholds stay this far inside (0, 1)


@dataclass(frozen=True)
class ThresholdChoice:
    """A version's decision threshold and the holdout evidence behind it."""

    threshold: float
    # "label rate", "fitted", "fixed is as good", "fixed is better", "fixed for this metric",
    # "fixed policy", "too few rows", "single class"
    reason: str
    metric: str
    value: float | None = None  # the metric at `threshold` on the holdout
    fixed_value: float | None = None  # the metric at the fixed decision_threshold
    tolerance: float | None = None  # one standard error of the metric: smaller gaps are noise


def metric_at(metric: str, target: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """`metric` (balanced_accuracy or f1) of labelling positive the rows scored at or above each
    of `thresholds`."""
    positive_scores, negative_scores = np.sort(scores[target]), np.sort(scores[~target])
    p, n = len(positive_scores), len(negative_scores)
    true_positives = p - np.searchsorted(positive_scores, thresholds, side="left")
    false_positives = n - np.searchsorted(negative_scores, thresholds, side="left")
    if metric == "balanced_accuracy":
        return (true_positives / p + (n - false_positives) / n) / 2
    denominator = true_positives + false_positives + p
    return np.divide(2 * true_positives, denominator, out=np.zeros(len(thresholds)), where=denominator > 0)


def standard_error(metric: str, value: float, p: int, n: int) -> float:
    """About one binomial standard error of `metric` near `value` on p positives and n negatives:
    balanced accuracy rests on its two class rates (the rarer class weighs most), F1 mostly on
    the positives."""
    rows = 4 / (1 / p + 1 / n) if metric == "balanced_accuracy" else p
    return float(np.sqrt(max(value * (1 - value), 0.0) / rows))


def searched_threshold(
    target: np.ndarray, scores: np.ndarray, metric: str
) -> tuple[float, float, float, float]:
    """The middle of the thresholds within one standard error of the best `metric` on these rows:
    (threshold, its value, the best value, the standard error)."""
    distinct = np.unique(scores)  # lowest first
    midway = np.r_[distinct[0] / 2, (distinct[:-1] + distinct[1:]) / 2, (distinct[-1] + 1) / 2]
    thresholds = np.unique(midway[(midway > 0) & (midway < 1)])  # never empty: 0.5 is between or beside
    values = metric_at(metric, target, scores, thresholds)
    best = float(values.max())
    tolerance = standard_error(metric, best, int(target.sum()), int((~target).sum()))
    near_best = np.flatnonzero(values >= best - tolerance)
    middle = near_best[len(near_best) // 2]
    return float(thresholds[middle]), float(values[middle]), best, tolerance


def choose_threshold(
    target: np.ndarray,
    scores: np.ndarray,
    metric: str,
    scoring: ScoringSettings,
    min_rows: int,
    label_rate: float,
) -> ThresholdChoice:
    """The decision threshold for a version whose held-out rows have `target` and `scores`, for
    the monitored `metric`, `label_rate` the share of positives among its training labels (see
    the module's rule); always strictly between 0 and 1."""
    fixed = scoring.decision_threshold
    if scoring.threshold_policy == "fixed":
        return ThresholdChoice(fixed, "fixed policy", metric)
    if metric not in FITTED_METRICS:
        return ThresholdChoice(fixed, "fixed for this metric", metric)
    target, scores = np.asarray(target).astype(bool), np.asarray(scores, dtype=np.float64)
    if len(target) < max(min_rows, 2):
        return ThresholdChoice(fixed, "too few rows", metric)
    p, n = int(target.sum()), int((~target).sum())
    if p == 0 or n == 0:
        return ThresholdChoice(fixed, "single class", metric)
    fixed_value = float(metric_at(metric, target, scores, np.array([fixed]))[0])
    if metric == "balanced_accuracy":
        threshold, reason = float(np.clip(label_rate, EDGE, 1 - EDGE)), "label rate"
        value = float(metric_at(metric, target, scores, np.array([threshold]))[0])
        tolerance = standard_error(metric, max(value, fixed_value), p, n)
    else:
        threshold, value, best, tolerance = searched_threshold(target, scores, metric)
        reason = "fitted"
        if fixed_value >= best - tolerance:
            return ThresholdChoice(fixed, "fixed is as good", metric, fixed_value, fixed_value, tolerance)
    if value < fixed_value - tolerance:
        return ThresholdChoice(fixed, "fixed is better", metric, fixed_value, fixed_value, tolerance)
    return ThresholdChoice(threshold, reason, metric, value, fixed_value, tolerance)
