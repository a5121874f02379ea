"""Smaller models: what fewer trees (`model_max_iter`, early stopping as always) or fewer/more
leaves (`model_max_leaf_nodes`), or leaves chosen per window as training does, cost in holdout
ROC AUC and buy in speed, against the fixed 31-leaf model in the same run; and what float32
thresholds would cost in parity.

Feeds: the generated transactions (train on one day, hold out another), the generated concept
drift (a 7-day window across the change, the next day held out) and, given `--elec2-csv`, the
real Elec2 feed (the 15k rows before the last 5k, which are held out). A variant's ROC AUC is
compared with the default's on the same holdout rows with the promotion's paired bootstrap
(80 % interval). For each feed's models: the library build, sklearn `predict_proba` and the
compiled library on the same prepared rows (taking turns), one row at a time, and the parity
gate on the holdout rows; for the default transactions model, the parity gate run on a float32
simulation of it.

Given `--elec2-window-days` too: the loop's own windows on Elec2 (that many days, the next day
held out, every 14 days; about 2 minutes for 7-day windows).

    python -m benchmarks.model_size [--train-rows 100000] [--rows 200000]
        [--elec2-csv PATH [--elec2-window-days 7]]
"""

import argparse
import copy
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmarks.common import bench_settings, cpu_model, labelled, load_average, threads_reported
from benchmarks.optimised import median_seconds
from inferloop.core.dataset import DatasetSpec, load_dataset_spec
from inferloop.core.settings import REPO_ROOT, Settings
from inferloop.tasks.data.conform import conform_rows
from inferloop.tasks.data.feeds import positive_target, prepare_features
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.model.comparison import paired_difference
from inferloop.tasks.model.optimised import (
    CompiledModel,
    available_cpus,
    booster_of,
    build_library,
    prepared_features,
)
from inferloop.tasks.model.parity import check_parity
from inferloop.tasks.model.training import build_pipeline, classification_metrics, fitted

# Training settings of each variant, over the defaults (100 trees at most, 31 leaves).
LEAVES_CHOSEN = "leaves chosen per window"  # as training fits: 4-31 leaves, `chosen_capacity`
VARIANTS: dict[str, dict[str, int]] = {
    "default": {},
    "max_iter 50": {"model_max_iter": 50},
    "max_iter 200": {"model_max_iter": 200},
    "max_leaf_nodes 15": {"model_max_leaf_nodes": 15},
    "max_leaf_nodes 63": {"model_max_leaf_nodes": 63},
    LEAVES_CHOSEN: {},
}
THRESHOLD = 0.5


@dataclass
class Feed:
    name: str
    spec: DatasetSpec
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass
class Variant:
    name: str
    pipeline: object
    fit_seconds: float
    scores: np.ndarray  # on the feed's holdout rows


def transactions(spec: DatasetSpec, train_rows: int) -> Feed:
    return Feed("transactions", spec, labelled(train_rows, 3), labelled(train_rows // 2, 5))


def concept_drift(spec: DatasetSpec, rows_per_day: int) -> Feed:
    config = GeneratorConfig(scenario="concept_drift", days=8, rows_per_day=rows_per_day, change_day=4)
    days = []
    for index in range(config.days):
        features, labels = generate_day(config, index)
        days.append(features.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id"))
    return Feed("concept drift (change on day 5 of 7)", spec, pd.concat(days[:-1]), days[-1])


ELEC2_ROWS_PER_DAY = 48
ELEC2_VICTORIA_FROM = 17_424  # rows before it have constant Victoria columns (datasets/elec2.yaml)


def elec2_rows(csv: Path) -> tuple[DatasetSpec, pd.DataFrame]:
    spec = load_dataset_spec(REPO_ROOT / "datasets" / "elec2.yaml")
    return spec, conform_rows(pd.read_csv(csv), spec).rows


def elec2(csv: Path) -> Feed:
    spec, rows = elec2_rows(csv)
    return Feed("Elec2 (real)", spec, rows.iloc[-20_000:-5_000], rows.iloc[-5_000:])


def elec2_windows(csv: Path, settings: Settings, window_days: int, every_days: int = 14) -> str:
    """The loop's own windows on Elec2: train on `window_days` days, hold out the next day, every
    `every_days` days; each variant's held-out scores pooled and compared with the default's
    (whole held-out days resampled)."""
    spec, rows = elec2_rows(csv)
    day = ELEC2_ROWS_PER_DAY
    scores: dict[str, list[np.ndarray]] = {name: [] for name in VARIANTS}
    trees: dict[str, list[int]] = {name: [] for name in VARIANTS}
    targets, groups = [], []
    for start in range(ELEC2_VICTORIA_FROM, len(rows) - day * (window_days + 1), day * every_days):
        train = rows.iloc[start : start + day * window_days]
        holdout = rows.iloc[start + day * window_days : start + day * (window_days + 1)]
        if positive_target(train, spec).nunique() < 2:  # the loop trains nothing on such a window
            continue
        feed = Feed("window", spec, train, holdout)
        for variant in fit_variants(feed, settings):
            scores[variant.name].append(variant.scores)
            trees[variant.name].append(booster_of(variant.pipeline).n_iter_)
        targets.append(positive_target(holdout, spec).to_numpy())
        groups.append(np.full(len(holdout), start))
    target, group = np.concatenate(targets), np.concatenate(groups)
    default = np.concatenate(scores["default"])
    lines = [
        f"### Elec2 (real), the loop's windows: {window_days}-day windows, the next day held out, "
        f"every {every_days} days: {len(targets)} windows, {len(target):,} held-out rows",
        "",
        "| variant | trees (median) | ROC AUC | vs default (80 % interval, days resampled) |",
        "|---|---|---|---|",
    ]
    for name in VARIANTS:
        paired = paired_difference("roc_auc", target, np.concatenate(scores[name]), default, group, THRESHOLD)
        versus = (
            "—"
            if name == "default"
            else f"{paired.difference:+.4f} ({paired.lower:+.4f}..{paired.upper:+.4f}) {paired.verdict}"
        )
        lines.append(f"| {name} | {statistics.median(trees[name]):.0f} | {paired.a:.4f} | {versus} |")
    return "\n".join(lines)


def fit_variants(feed: Feed, settings: Settings) -> list[Variant]:
    features, target = prepare_features(feed.train, feed.spec), positive_target(feed.train, feed.spec)
    holdout = prepare_features(feed.holdout, feed.spec)
    variants = []
    for name, overrides in VARIANTS.items():
        training = settings.with_overrides(**overrides).training
        started = time.perf_counter()
        # One OpenMP thread: on a busy 2-core machine two threads fitted 10x slower (18 s vs 1.8 s,
        # 50k rows, load 7); the variants' fit times compare alike either way.
        with threadpool_limits(1, user_api="openmp"):
            if name == LEAVES_CHOSEN:
                pipeline = fitted(feed.train, feed.spec, training)
            else:
                pipeline = build_pipeline(feed.spec, training).fit(features, target)
        seconds = time.perf_counter() - started
        variants.append(Variant(name, pipeline, seconds, pipeline.predict_proba(holdout)[:, 1]))
    return variants


def quality_table(feed: Feed, variants: list[Variant]) -> str:
    target = positive_target(feed.holdout, feed.spec).to_numpy()
    default = variants[0]
    day_of_row = feed.spec.partitioning.floor_times(feed.holdout[feed.spec.time_column]).to_numpy()
    lines = [
        f"### {feed.name}: {len(feed.train):,} training rows, {len(target):,} held out "
        f"({target.mean():.1%} positive)",
        "",
        "| variant | trees | ROC AUC | vs default (80 % interval) | accuracy | fit s |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants:
        metrics = classification_metrics(target, variant.scores, THRESHOLD)
        paired = paired_difference("roc_auc", target, variant.scores, default.scores, day_of_row, THRESHOLD)
        versus = (
            "—"
            if variant is default
            else "same model as default"
            if same_as_default(variant, default)
            else f"{paired.difference:+.4f} ({paired.lower:+.4f}..{paired.upper:+.4f}) {paired.verdict}"
        )
        lines.append(
            f"| {variant.name} | {booster_of(variant.pipeline).n_iter_} | {metrics['roc_auc']:.4f} "
            f"| {versus} | {metrics['accuracy']:.4f} | {variant.fit_seconds:.1f} |"
        )
    return "\n".join(lines)


@dataclass
class Speed:
    build_seconds: float
    library_kib: float
    sklearn_seconds: list[float]
    compiled_seconds: list[float]
    single_sklearn_ms: float = 0.0
    single_compiled_ms: float = 0.0
    parity: str = ""


def same_as_default(variant: Variant, default: Variant) -> bool:
    """Early stopping stopped before the variant's cap: it is the default model."""
    return variant is not default and (
        booster_of(variant.pipeline).n_iter_ == booster_of(default.pipeline).n_iter_
        and np.array_equal(variant.scores, default.scores)
    )


def speed_table(feed: Feed, variants: list[Variant], rows: int, repeats: int, single_calls: int) -> str:
    """Every variant's library and booster on `rows` prepared rows (the holdout rows, repeated),
    on one thread each: on a loaded 2-core machine two threads measured contention more than the
    model; the variants take turns in every repeat, so load changes hit them alike."""
    holdout = prepare_features(feed.holdout, feed.spec)
    measured = [v for v in variants if not same_as_default(v, variants[0])]
    speeds, compiled, matrices = {}, {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for variant in measured:
            built = build_library(variant.pipeline, Path(scratch) / variant.name.replace(" ", "_"))
            compiled[variant.name] = CompiledModel(built.path, threads=1)
            matrix = prepared_features(variant.pipeline, holdout)
            matrices[variant.name] = matrix[np.arange(rows) % len(matrix)]
            speeds[variant.name] = Speed(built.seconds, built.path.stat().st_size / 1024, [], [])
        with threadpool_limits(1, user_api="openmp"):
            for _ in range(repeats):
                for variant in measured:
                    booster, matrix = booster_of(variant.pipeline), matrices[variant.name]
                    speed = speeds[variant.name]
                    speed.sklearn_seconds.append(median_seconds(partial(booster.predict_proba, matrix), 1))
                    library = compiled[variant.name]
                    speed.compiled_seconds.append(median_seconds(partial(library.positive_scores, matrix), 1))
            for variant in measured:
                booster, one, speed = (
                    booster_of(variant.pipeline),
                    matrices[variant.name][:1],
                    speeds[variant.name],
                )
                speed.single_sklearn_ms = 1e3 * median_seconds(
                    partial(booster.predict_proba, one), single_calls
                )
                library = compiled[variant.name]
                speed.single_compiled_ms = 1e3 * median_seconds(
                    partial(library.positive_scores, one), single_calls
                )
        for variant in measured:
            report = check_parity(variant.pipeline, compiled[variant.name], holdout, THRESHOLD)
            speeds[
                variant.name
            ].parity = f"{'passed' if report.passed else 'FAILED'} (max |Δp| {report.max_abs_diff:.1e})"
    default_s = statistics.median(speeds[variants[0].name].compiled_seconds)
    lines = [
        f"Speed ({feed.name} models, {rows:,} prepared rows, 1 thread, median of {repeats}; "
        f"single row: median of {single_calls} calls):",
        "",
        "| variant | build s | library KiB | sklearn rows/s | compiled rows/s | compiled vs default "
        "| single row sklearn ms | compiled ms | parity gate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        if variant.name not in speeds:
            lines.append(f"| {variant.name} | = default (early stopping stopped first) |" + " |" * 7)
            continue
        speed = speeds[variant.name]
        sklearn_s, compiled_s = (
            statistics.median(speed.sklearn_seconds),
            statistics.median(speed.compiled_seconds),
        )
        lines.append(
            f"| {variant.name} | {speed.build_seconds:.1f} | {speed.library_kib:,.0f} "
            f"| {rows / sklearn_s:,.0f} | {rows / compiled_s:,.0f} | {default_s / compiled_s:.2f}x "
            f"| {speed.single_sklearn_ms:.3f} | {speed.single_compiled_ms:.3f} | {speed.parity} |"
        )
    return "\n".join(lines)


class Float32Booster:
    """The booster's own predictor with its thresholds and leaf values rounded to float32, fed
    inputs rounded to float32: what a library compiled with float32 thresholds would score
    (two float32 values compared in float64 decide as float32 code does)."""

    def __init__(self, booster):
        self.booster = copy.deepcopy(booster)
        for (predictor,) in self.booster._predictors:
            for field in ("num_threshold", "value"):
                predictor.nodes[field] = predictor.nodes[field].astype(np.float32).astype(np.float64)

    def positive_scores(self, matrix: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # 1e300 is inf in float32, as a float32 library reads it
            rounded = matrix.astype(np.float32).astype(np.float64)
        return self.booster.predict_proba(rounded)[:, 1]


def float32_cost(feed: Feed, variant: Variant) -> str:
    """The parity gate run on a float32 simulation of the variant's booster."""
    holdout = prepare_features(feed.holdout, feed.spec)
    report = check_parity(variant.pipeline, Float32Booster(booster_of(variant.pipeline)), holdout, THRESHOLD)
    by_case = ", ".join(f"{case} {diff:.1e}" for case, diff in report.max_abs_diff_by_case.items())
    return (
        f"float32 thresholds and leaves ({feed.name}, {variant.name} model): parity gate "
        f"{'passed' if report.passed else 'failed: ' + report.reason}. Max |Δp| by case: {by_case}; "
        f"quantiles over all {report.rows_compared:,} rows: "
        + ", ".join(f"{name} {value:.1e}" for name, value in report.diff_quantiles.items())
    )


def run(
    train_rows: int,
    rows: int,
    repeats: int,
    single_calls: int,
    elec2_csv: Path | None = None,
    elec2_window_days: int | None = None,
) -> str:
    lines = [
        f"CPU: {cpu_model()}; CPUs available: {available_cpus()}",
        f"threadpoolctl: {threads_reported()}",
        f"load average before: {load_average()}",
        "",
    ]
    settings = bench_settings()
    feeds = [transactions(settings.dataset, train_rows), concept_drift(settings.dataset, train_rows // 8)]
    if elec2_csv is not None:
        feeds.append(elec2(elec2_csv))
    for index, feed in enumerate(feeds):
        variants = fit_variants(feed, settings)
        lines += [
            quality_table(feed, variants),
            "",
            speed_table(feed, variants, rows, repeats, single_calls),
            "",
        ]
        if index == 0:
            lines += [float32_cost(feed, variants[0]), ""]
    if elec2_csv is not None and elec2_window_days:
        lines += [elec2_windows(elec2_csv, settings, elec2_window_days), ""]
    lines.append(f"load average after: {load_average()}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single-calls", type=int, default=200)
    parser.add_argument("--elec2-csv", type=Path, default=None, help="the real Elec2 CSV (OpenML 151)")
    parser.add_argument(
        "--elec2-window-days",
        type=int,
        default=None,
        help="also the loop's windows of this many days on Elec2",
    )
    args = parser.parse_args()
    print(
        run(
            args.train_rows,
            args.rows,
            args.repeats,
            args.single_calls,
            args.elec2_csv,
            args.elec2_window_days,
        )
    )


if __name__ == "__main__":
    from inferloop.core.offline import prepare_process

    prepare_process()
    main()
