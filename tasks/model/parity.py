"""The parity gate: a compiled library is used only if it scores like the scikit-learn pipeline.

Compared on the prepared feature matrix (the booster's input; the encoder in front of it is the
same Python code either way, and the holdout rows are encoded by the saved encoding the library
will be used with) of the holdout rows plus a generated edge-case set:
missing values in every feature (categoricals included) and in all at once, every category code
the booster may see plus unseen and negative codes, extreme and infinite numeric values, and every
numeric split threshold read from the trees, exactly and one float64 step on either side, and
doubles whose low 32 bits are all ones (the bit pattern tl2cgen's code takes for "missing").

Required: identical labels at the decision threshold and max |difference in probability| <= 1e-6.
Thresholds and leaf values are compiled as float64 (treelite keeps scikit-learn's types), so
the differences left are the order of summing leaves (measured: <= 4e-16).
"""

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from inferloop.core.feature_codes import FeatureCodes
from inferloop.tasks.model.optimised import CompiledModel, booster_of, prepared_features

MAX_ABS_DIFF = 1e-6
BASE_ROWS = 64  # holdout rows the edge cases are written into
MAX_CATEGORY_CODE = 254  # HistGradientBoosting keeps at most 255 categories per feature (max_bins)


@dataclass(frozen=True)
class ParityReport:
    """Whether a compiled library scores like the scikit-learn pipeline, and by how much not."""

    passed: bool
    max_abs_diff: float
    label_agreement: float  # share of rows with the same label at the decision threshold
    rows_compared: int
    reason: str  # why it failed, or "" when it passed
    holdout_rows: int = 0
    edge_case_rows: int = 0
    tolerance: float = MAX_ABS_DIFF
    decision_threshold: float = 0.5
    diff_quantiles: dict[str, float] = field(default_factory=dict)  # p50, p99, p99.9, max
    max_abs_diff_by_case: dict[str, float] = field(default_factory=dict)  # holdout and each edge case

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def summary(self) -> str:
        verdict = "passed" if self.passed else f"failed: {self.reason}"
        return (
            f"parity {verdict} (max |Δp| {self.max_abs_diff:.2e}, labels agree on "
            f"{self.label_agreement:.4%} of {self.rows_compared} rows)"
        )


def numeric_thresholds(booster) -> dict[int, np.ndarray]:
    """Every numeric split threshold of the booster, by feature index."""
    found: dict[int, list[np.ndarray]] = {}
    for (predictor,) in booster._predictors:
        nodes = predictor.nodes
        splits = nodes[(nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)]
        for feature in np.unique(splits["feature_idx"]):
            found.setdefault(int(feature), []).append(
                splits["num_threshold"][splits["feature_idx"] == feature]
            )
    return {feature: np.unique(np.concatenate(values)) for feature, values in found.items()}


def edge_cases(booster, base: np.ndarray) -> dict[str, np.ndarray]:
    """Generated rows (prepared matrices) by kind, each a copy of base rows with one feature set."""
    n_features = booster.n_features_in_
    if len(base) == 0:
        base = np.zeros((1, n_features))
    categorical = (
        np.flatnonzero(booster.is_categorical_) if booster.is_categorical_ is not None else np.array([])
    )
    numeric = [j for j in range(n_features) if j not in set(categorical)]

    def written(feature: int, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        rows = base[np.arange(len(values)) % len(base)].copy()
        rows[:, feature] = values
        return rows

    cases = {
        "missing_each_feature": np.vstack(
            [written(j, np.full(len(base), np.nan)) for j in range(n_features)]
        ),
        "missing_all_features": np.full((1, n_features), np.nan),
    }
    if len(categorical):
        cases["every_category_code"] = np.vstack(
            [written(j, np.arange(MAX_CATEGORY_CODE + 1)) for j in categorical]
        )
        cases["negative_category_code"] = np.vstack([written(j, [-1.0, -7.0]) for j in categorical])
        categorical_missing = base.copy()
        categorical_missing[:, categorical] = np.nan
        cases["missing_all_categoricals"] = categorical_missing
    if numeric:
        extremes = [np.inf, -np.inf, 1e300, -1e300, 0.0, -0.0, 5e-324]
        cases["extreme_values"] = np.vstack([written(j, np.repeat(extremes, 3)) for j in numeric])
    thresholds = numeric_thresholds(booster)
    if thresholds:
        cases["at_split_thresholds"] = np.vstack(
            [
                written(
                    feature,
                    np.concatenate([values, np.nextafter(values, np.inf), np.nextafter(values, -np.inf)]),
                )
                for feature, values in thresholds.items()
            ]
        )
        # Doubles whose low 32 bits are all ones: tl2cgen's missing-value sentinel.
        cases["missing_sentinel_bits"] = np.vstack(
            [
                written(feature, (values.view(np.uint64) | np.uint64(0xFFFFFFFF)).view(np.float64))
                for feature, values in thresholds.items()
            ]
        )
    return cases


def compare_scores(
    expected: np.ndarray,
    actual: np.ndarray,
    case_of_row: np.ndarray,
    decision_threshold: float,
    tolerance: float = MAX_ABS_DIFF,
    holdout_rows: int = 0,
) -> ParityReport:
    """The parity verdict for two score vectors of the same rows."""
    rows = len(expected)
    if actual.shape != expected.shape:
        return ParityReport(
            passed=False,
            max_abs_diff=float("inf"),
            label_agreement=0.0,
            rows_compared=rows,
            reason=f"the library returned {actual.shape} scores for {expected.shape} rows",
            holdout_rows=holdout_rows,
            edge_case_rows=rows - holdout_rows,
            tolerance=tolerance,
            decision_threshold=decision_threshold,
        )
    diff = np.abs(actual - expected)
    diff = np.where(np.isnan(diff), np.where(np.isnan(actual) & np.isnan(expected), 0.0, np.inf), diff)
    labels_agree = (actual >= decision_threshold) == (expected >= decision_threshold)
    agreement = float(labels_agree.mean()) if rows else 1.0
    max_diff = float(diff.max()) if rows else 0.0
    by_case = {str(case): float(diff[case_of_row == case].max()) for case in pd.unique(case_of_row) if rows}
    reasons = []
    if rows == 0:
        reasons.append("no rows to compare")
    if max_diff > tolerance:
        worst = max(by_case, key=by_case.get)
        reasons.append(
            f"max |Δprobability| {max_diff:.3g} > {tolerance:g} "
            f"(worst in {worst}; {int((diff > tolerance).sum())} rows over)"
        )
    if agreement < 1.0:
        reasons.append(f"labels differ on {int((~labels_agree).sum())} of {rows} rows")
    quantiles = (
        dict(
            zip(
                ("p50", "p99", "p99.9", "max"),
                np.quantile(diff, [0.5, 0.99, 0.999, 1.0]).tolist(),
                strict=True,
            )
        )
        if rows
        else {}
    )
    return ParityReport(
        passed=not reasons,
        max_abs_diff=max_diff,
        label_agreement=agreement,
        rows_compared=rows,
        reason="; ".join(reasons),
        holdout_rows=holdout_rows,
        edge_case_rows=rows - holdout_rows,
        tolerance=tolerance,
        decision_threshold=decision_threshold,
        diff_quantiles=quantiles,
        max_abs_diff_by_case=by_case,
    )


def check_parity(
    pipeline,
    compiled: CompiledModel,
    holdout: pd.DataFrame,
    decision_threshold: float,
    tolerance: float = MAX_ABS_DIFF,
    codes: FeatureCodes | None = None,
) -> ParityReport:
    """Compare the compiled library with the pipeline's own booster on the holdout rows (raw
    features, encoded by the pipeline) and on the generated edge cases. With `codes` (the
    encoding saved for the library to be used with), the library scores the holdout rows as
    `codes` encode them, so the saved encoding is gated too."""
    from threadpoolctl import threadpool_limits

    from inferloop.tasks.model.optimised import available_cpus

    booster = booster_of(pipeline)
    holdout_matrix = prepared_features(pipeline, holdout)
    base = holdout_matrix[
        np.linspace(0, len(holdout_matrix) - 1, min(BASE_ROWS, len(holdout_matrix))).astype(int)
    ]
    cases = {"holdout": holdout_matrix, **edge_cases(booster, base)}
    matrix = np.vstack(list(cases.values()))
    case_of_row = np.repeat(np.array(list(cases)), [len(rows) for rows in cases.values()])
    with threadpool_limits(available_cpus(), user_api="openmp"):
        expected = booster.predict_proba(matrix)[:, 1]
    if codes is not None:
        matrix = np.vstack([codes.transform(holdout), *list(cases.values())[1:]])
    try:
        actual = compiled.positive_scores(matrix)
    except Exception as error:  # a library that cannot score is a failed gate, not a failed run
        return ParityReport(
            passed=False,
            max_abs_diff=float("inf"),
            label_agreement=0.0,
            rows_compared=len(matrix),
            reason=f"the library failed to score: {error}",
            holdout_rows=len(holdout_matrix),
            edge_case_rows=len(matrix) - len(holdout_matrix),
            tolerance=tolerance,
            decision_threshold=decision_threshold,
        )
    return compare_scores(
        expected, actual, case_of_row, decision_threshold, tolerance, holdout_rows=len(holdout_matrix)
    )
