"""Data drift of one batch against a model's reference profile (see tasks/model_report.py).

PSI for every feature (numeric: the profile's quantile bins; categorical: its category
frequencies plus an "unseen" bucket; nulls are a bucket of their own), KS for numerics against
the profile's quantile sample, and PSI of the model's scores (prediction drift).
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from inferloop.core.dataset import DatasetSpec

# A bucket empty on one side would make PSI infinite; this floor is the usual smoothing.
PSI_FLOOR = 1e-4
# KS sorts the batch; beyond this many rows a deterministic subsample measures the same
# statistic to within ~0.005 and keeps a 1M-row report under a second.
KS_MAX_ROWS = 50_000


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    rows: int
    psi: float
    ks: float | None = None
    ks_pvalue: float | None = None
    unseen_share: float | None = None
    flagged: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)) over buckets, both given as shares summing to 1."""
    expected = np.clip(np.asarray(expected, dtype=float), PSI_FLOOR, None)
    actual = np.clip(np.asarray(actual, dtype=float), PSI_FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_shares(values: np.ndarray, bin_edges: list[float]) -> np.ndarray:
    """Shares of `values` per profile bin, then the null share (as the profile counts them)."""
    finite = values[np.isfinite(values)]
    inner = np.asarray(bin_edges[1:-1])
    counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(bin_edges) - 1)
    total = max(len(values), 1)
    return np.append(counts / total, (len(values) - len(finite)) / total)


def numeric_drift(name: str, values: pd.Series, profile: dict) -> FeatureDrift:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    expected = np.append(
        np.asarray(profile["frequencies"]) * (1 - profile["null_share"]), profile["null_share"]
    )
    drift = FeatureDrift(
        name,
        "numeric",
        len(array),
        population_stability_index(expected, numeric_shares(array, profile["bin_edges"])),
    )
    finite = array[np.isfinite(array)]
    if len(finite) and profile["sample"]:
        drift.ks, drift.ks_pvalue = kolmogorov_smirnov(finite, np.asarray(profile["sample"]))
    return drift


def kolmogorov_smirnov(values: np.ndarray, reference_quantiles: np.ndarray) -> tuple[float, float]:
    """KS statistic of `values` against the reference, represented by its evenly spaced
    quantiles (within 1/200 of the full reference). Two-sample step CDFs, so repeated values
    (counts, flags) are compared at the same point. The p-value treats the quantiles as a
    sample of their size, so it is conservative: the statistic is what to watch."""
    if len(values) > KS_MAX_ROWS:
        values = values[:: int(np.ceil(len(values) / KS_MAX_ROWS))]
    result = stats.ks_2samp(values, reference_quantiles)
    return float(result.statistic), float(result.pvalue)


def categorical_drift(name: str, values: pd.Series, profile: dict) -> FeatureDrift:
    known = profile["frequencies"]
    counts = values.value_counts(dropna=True)
    # The profile's keys are str(value): convert the distinct values, not every row.
    observed = counts.groupby(counts.index.map(str)).sum()
    total = max(len(values), 1)
    actual = [observed.get(category, 0) / total for category in known]
    unseen = (observed.sum() - sum(observed.get(category, 0) for category in known)) / total
    null = float(values.isna().mean()) if len(values) else 0.0
    expected = [share * (1 - profile["null_share"]) for share in known.values()]
    psi = population_stability_index([*expected, 0.0, profile["null_share"]], [*actual, unseen, null])
    return FeatureDrift(name, "categorical", len(values), psi, unseen_share=float(unseen))


def feature_drift(
    frame: pd.DataFrame, profile: dict, spec: DatasetSpec, psi_threshold: float
) -> list[FeatureDrift]:
    """Drift of every profiled (not personal) feature of `frame` against the profile; `flagged`
    when PSI exceeds the threshold (the decision to act on a flag is the retrain policy's)."""
    drifts = []
    for name, kind in spec.profiled_features.items():
        measure = numeric_drift if kind == "numeric" else categorical_drift
        drift = measure(name, frame[name], profile["features"][name])
        drift.flagged = drift.psi > psi_threshold
        drifts.append(drift)
    return drifts


def prediction_drift(scores: np.ndarray, profile: dict) -> float:
    """PSI of the model's scores on this batch against its scores on the training rows."""
    prediction = profile["prediction"]
    expected = np.append(np.asarray(prediction["frequencies"]), 0.0)
    return population_stability_index(
        expected, numeric_shares(np.asarray(scores, dtype=float), prediction["bin_edges"])
    )
