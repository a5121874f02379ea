"""The optimised artifact vs scikit-learn: the compiled library's prediction against the
booster's own `predict_proba`, on the same prepared rows (1M by default) and one row at a time.

Prints beside its figures what moves them between machines of one kind: the CPU model, the
thread counts threadpoolctl reports, the library's threads and the load average before and after.

    python -m benchmarks.optimised [--rows 1000000] [--repeats 3] [--single-calls 300]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.common import (
    bench_settings,
    cpu_model,
    labelled,
    load_average,
    threads_reported,
    train_model,
)
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.model.optimised import (
    CompiledModel,
    available_cpus,
    booster_of,
    build_library,
    prepared_features,
)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(rows: int, repeats: int, single_calls: int, train_rows: int) -> str:
    lines = [
        f"CPU: {cpu_model()}; CPUs available: {available_cpus()} (os.cpu_count {os.cpu_count()})",
        f"load average before: {load_average()}",
    ]
    settings = bench_settings()
    spec = settings.dataset
    pipeline = train_model(settings, train_rows)
    booster = booster_of(pipeline)
    with tempfile.TemporaryDirectory() as scratch:
        built = build_library(pipeline, Path(scratch))
        compiled = CompiledModel(built.path)
        matrix = prepared_features(pipeline, prepare_features(labelled(rows, 4), spec))
        lines.append(
            f"model: {booster.n_iter_} trees, {booster.n_features_in_} features; compiled with "
            f"{built.compiler} in {built.seconds:.1f} s; library threads {compiled.threads} "
            "(1 below 10k rows)"
        )
        lines.append(f"threadpoolctl: {threads_reported()}")
        sklearn_s, compiled_s = [], []
        for _ in range(repeats):  # taking turns, so load changes hit both alike
            sklearn_s.append(median_seconds(lambda: booster.predict_proba(matrix), 1))
            compiled_s.append(median_seconds(lambda: compiled.positive_scores(matrix), 1))
        fast, slow = compiled.positive_scores(matrix), booster.predict_proba(matrix)[:, 1]
        diff, flipped = np.abs(fast - slow), int(((fast >= 0.5) != (slow >= 0.5)).sum())
        one = matrix[:1]
        compiled.positive_scores(one)
        single_compiled = median_seconds(lambda: compiled.positive_scores(one), single_calls)
        with threadpool_limits(1, user_api="openmp"):  # as inferloop scores small batches
            single_sklearn = median_seconds(lambda: booster.predict_proba(one), single_calls)
    sk, co = statistics.median(sklearn_s), statistics.median(compiled_s)

    def runs(seconds: list[float]) -> str:
        return ", ".join(f"{s:.2f}" for s in seconds)

    lines += [
        "",
        f"| {rows:,} prepared rows | median s (runs) | rows/s |",
        "|---|---|---|",
        f"| sklearn predict_proba | {sk:.3f} ({runs(sklearn_s)}) | {rows / sk:,.0f} |",
        f"| compiled (treelite) | {co:.3f} ({runs(compiled_s)}) | {rows / co:,.0f} |",
        "",
        f"batch speed-up: **{sk / co:.2f}x** (goal: at least 4x)",
        f"single row: sklearn {single_sklearn * 1e3:.3f} ms, compiled {single_compiled * 1e3:.3f} ms: "
        f"**{single_sklearn / single_compiled:.1f}x** lower latency (goal: at least 20x)",
        f"parity on these rows: max |Δp| {diff.max():.2e}, labels differ on {flipped} rows",
        f"load average after: {load_average()}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single-calls", type=int, default=300)
    parser.add_argument("--train-rows", type=int, default=100_000)
    args = parser.parse_args()
    print(run(args.rows, args.repeats, args.single_calls, args.train_rows))


if __name__ == "__main__":
    from inferloop.core.offline import prepare_process

    prepare_process()
    main()
