"""Batch scoring vs the model itself: the scoring task (read → gate → predict → write with
lineage → manifest) against raw `predict_proba` on the same rows, with the scikit-learn pipeline
and with its compiled booster (the optimised artifact); and the default pipeline (native
categorical splits) against one-hot encoding + the same booster."""

import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from benchmarks.common import bench_lake, bench_settings, labelled, scoring_seconds, timed, train_model
from inferloop.core import catalog
from inferloop.core.settings import Settings
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.model.optimised import CompiledModel, OptimisedModel, build_library, encoder_of
from inferloop.tasks.model.training import MODEL_PARAMS, build_pipeline

DAY = date(2026, 1, 1)


def one_hot_pipeline(settings: Settings) -> Pipeline:
    spec = settings.dataset
    encoder = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                spec.categorical_features,
            )
        ],
        remainder="passthrough",
    )
    return Pipeline([("encode", encoder), ("model", HistGradientBoostingClassifier(**MODEL_PARAMS))])


def pipelines(
    settings: Settings, train_rows: int = 100_000, test_rows: int = 200_000, repeats: int = 3
) -> dict:
    """Fit both pipelines on the same rows; compare held-out ROC AUC and predict throughput
    (median of `repeats` predictions of the held-out rows, the two pipelines taking turns).
    Held-out rows are strings, as a caller of the served model sends them."""
    spec = settings.dataset
    train, test = labelled(train_rows, 3), labelled(test_rows, 4)
    x_train, x_test = prepare_features(train, spec), prepare_features(test, spec)
    fitted = {
        "native categorical": build_pipeline(spec).fit(x_train, train["is_fraud"]),
        "one-hot": one_hot_pipeline(settings).fit(x_train, train["is_fraud"]),
    }
    seconds: dict[str, list[float]] = {name: [] for name in fitted}
    for _ in range(repeats):
        for name, pipeline in fitted.items():
            started = time.perf_counter()
            pipeline.predict_proba(x_test)
            seconds[name].append(time.perf_counter() - started)
    return {
        name: {
            "roc_auc": roc_auc_score(test["is_fraud"], pipeline.predict_proba(x_test)[:, 1]),
            "rows_per_s": test_rows / statistics.median(seconds[name]),
        }
        for name, pipeline in fitted.items()
    }


def run(rows: int, model, compiled, repeats: int = 3) -> dict:
    """Medians of `repeats` turns of the raw prediction and of the scoring task (output removed
    between runs), for the scikit-learn pipeline and for the same pipeline's compiled booster
    (`compiled`: an OptimisedModel, as scoring loads it). Each raw baseline predicts the
    rows prepared as scoring prepares them (categoricals as read from parquet,
    dictionary-encoded), in the task's chunks, from raw features: encoder and booster."""
    settings, storage, table = bench_lake(rows)
    spec = settings.dataset
    path = catalog.features_file(spec.name, DAY)
    batches = storage.iter_batches(path, settings.scoring.score_batch_rows, spec.categorical_features)
    features = prepare_features(pa.Table.from_batches(list(batches)).to_pandas(), spec)
    del table
    chunk = settings.scoring.score_batch_rows
    seconds: dict[str, list[float]] = {"predict": [], "task": [], "compiled_predict": [], "compiled_task": []}
    for _ in range(repeats):
        for name, scorer, predict in (
            ("", model, model.predict_proba),
            ("compiled_", compiled, compiled.positive_scores),
        ):
            t: dict[str, float] = {}
            with timed(t, "predict"):
                for start in range(0, rows, chunk):
                    predict(features.iloc[start : start + chunk])
            seconds[f"{name}predict"].append(t["predict"])
            storage.delete_dir(catalog.PREDICTIONS)
            seconds[f"{name}task"].append(scoring_seconds(settings, storage, scorer))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "rows": rows,
        "predict_s": median["predict"],
        "scoring_s": median["task"],
        "ratio": median["predict"] / median["task"],
        "rows_per_s": rows / median["task"],
        "compiled_predict_s": median["compiled_predict"],
        "compiled_scoring_s": median["compiled_task"],
        "compiled_ratio": median["compiled_predict"] / median["compiled_task"],
        "compiled_rows_per_s": rows / median["compiled_task"],
    }


def report(pipeline_results: dict, runs: list[dict]) -> str:
    lines = ["| pipeline | held-out ROC AUC | predict_proba rows/s |", "|---|---|---|"]
    for name, r in pipeline_results.items():
        lines.append(f"| {name} | {r['roc_auc']:.4f} | {r['rows_per_s']:,.0f} |")
    native, onehot = pipeline_results["native categorical"], pipeline_results["one-hot"]
    lines.append(
        f"\nnative / one-hot speed: {native['rows_per_s'] / onehot['rows_per_s']:.2f}x; "
        f"ROC AUC difference {native['roc_auc'] - onehot['roc_auc']:+.4f}\n"
    )
    lines += [
        "| rows | raw predict_proba s | scoring task s | throughput ratio (raw/task) | task rows/s |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['rows']:,} | {r['predict_s']:.2f} | {r['scoring_s']:.2f} | {r['ratio']:.2f} | "
            f"{r['rows_per_s']:,.0f} |"
        )
    lines += [
        "\nWith the compiled booster (the optimised artifact), raw = encoder + compiled prediction:\n",
        "| rows | raw compiled s | scoring task s | throughput ratio (raw/task) | task rows/s | "
        "task vs the scikit-learn task |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['rows']:,} | {r['compiled_predict_s']:.2f} | {r['compiled_scoring_s']:.2f} | "
            f"{r['compiled_ratio']:.2f} | {r['compiled_rows_per_s']:,.0f} | "
            f"{r['scoring_s'] / r['compiled_scoring_s']:.2f}x |"
        )
    return "\n".join(lines)


def main(rows: list[int]) -> str:
    settings = bench_settings()
    pipeline_results = pipelines(settings)
    model = train_model(settings)
    with tempfile.TemporaryDirectory() as scratch:
        compiled = OptimisedModel(encoder_of(model), CompiledModel(build_library(model, Path(scratch)).path))
        return report(pipeline_results, [run(n, model, compiled) for n in rows])
