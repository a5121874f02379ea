"""What a trained model carries besides its weights: evaluation plots and a reference profile.

The reference profile (per-feature quantile bins and category frequencies of the training
data, and the distribution of the model's scores) is what monitoring compares live data to.
"""

import numpy as np
import pandas as pd

from inferloop.core.dataset import DatasetSpec

PROFILE_BINS = 10
UNSEEN = "__unseen__"


def _bin_frequencies(values: np.ndarray, edges: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(edges) - 1)
    return (counts / max(len(finite), 1)).round(6).tolist()


def numeric_profile(values: pd.Series) -> dict:
    array = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = array[np.isfinite(array)]
    # Unique quantiles as cut points, open-ended both sides: a 0/1 flag keeps two bins, and a
    # value beyond the training range lands in a bucket of its own.
    levels = np.linspace(0, 1, PROFILE_BINS + 1)
    cuts = np.unique(np.quantile(finite, levels)) if len(finite) else np.array([])
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    return {
        "kind": "numeric",
        "bin_edges": [float(e) for e in edges],
        "frequencies": _bin_frequencies(array, edges),
        "null_share": float(np.mean(~np.isfinite(array))) if len(array) else 0.0,
        "sample": np.quantile(finite, np.linspace(0, 1, 201)).round(6).tolist() if len(finite) else [],
    }


def categorical_profile(values: pd.Series) -> dict:
    shares = values.astype(object).where(values.notna(), None).value_counts(normalize=True)
    return {
        "kind": "categorical",
        "frequencies": {str(k): round(float(v), 6) for k, v in shares.items()},
        "unseen_bucket": UNSEEN,
        "null_share": float(values.isna().mean()),
    }


def reference_profile(frame: pd.DataFrame, scores: np.ndarray, spec: DatasetSpec) -> dict:
    """Per-feature distributions of the training rows and of the model's scores on them; none
    of personal features (a profile holds values: quantiles, categories)."""
    features = {
        column: numeric_profile(frame[column]) if kind == "numeric" else categorical_profile(frame[column])
        for column, kind in spec.profiled_features.items()
    }
    return {
        "dataset": spec.name,
        "rows": len(frame),
        "features": features,
        "prediction": numeric_profile(pd.Series(scores)),
    }


def evaluation_figures(target: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC curve, confusion matrix and calibration curve of held-out scores, as figures."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    figures = {}
    roc = RocCurveDisplay.from_predictions(target, scores)
    roc.ax_.set_title("ROC curve (held-out days)")
    figures["roc_curve.png"] = roc.figure_
    matrix = ConfusionMatrixDisplay.from_predictions(target, (scores >= threshold).astype(int))
    matrix.ax_.set_title(f"Confusion matrix at threshold {threshold}")
    figures["confusion_matrix.png"] = matrix.figure_
    calibration = CalibrationDisplay.from_predictions(target, scores, n_bins=10, strategy="quantile")
    calibration.ax_.set_title("Calibration (held-out days)")
    figures["calibration.png"] = calibration.figure_
    for figure in figures.values():
        figure.set_size_inches(5, 4)
    plt.close("all")
    return figures
