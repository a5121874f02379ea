"""Drift report (tasks/drift.py: PSI of every feature, KS of every numeric one against the
profile's 201 quantiles, PSI of the scores) vs the natural baseline: `scipy.stats.ks_2samp` of
every numeric column against the full reference sample the profile was built from.

    python -m benchmarks.drift [--rows 1000000] [--reference-rows 100000] [--repeats 3]
"""

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from scipy import stats

from inferloop.core.dataset import DatasetSpec
from inferloop.tasks.model.evaluation import reference_profile
from inferloop.tasks.monitoring.drift import feature_drift, prediction_drift

NUMERIC = 10
CATEGORICAL = 6
COUNTS = [f"num_{i}" for i in range(NUMERIC) if i % 4 == 2]  # integer counts: ties
SPEC = DatasetSpec(
    name="bench",
    id_column="id",
    time_column="event_time",
    label={"column": "target"},
    features={
        **{f"num_{i}": "numeric" for i in range(NUMERIC)},
        **{f"cat_{i}": "categorical" for i in range(CATEGORICAL)},
    },
)


def frame(rows: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """`rows` rows of 10 numeric columns (normal, lognormal, integer counts, uniform, with 1% nulls
    in one) and 6 categorical ones (3 to 40 string categories, Zipf-like), and a model-like score.
    `shift` moves two numeric columns and one category's share, as a drifted batch would."""
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(NUMERIC):
        kind = i % 4
        if kind == 0:
            values = rng.normal(50.0 + shift * 10.0 * (i == 0), 10.0, rows)
        elif kind == 1:
            values = rng.lognormal(3.0 + shift * (i == 1), 1.0, rows)
        elif kind == 2:
            values = rng.poisson(2.0 + i, rows).astype(float)
        else:
            values = rng.uniform(0.0, 100.0, rows)
        columns[f"num_{i}"] = values
    columns["num_3"][rng.random(rows) < 0.01] = np.nan
    for i, size in enumerate([3, 5, 8, 12, 20, 40]):
        names = np.array([f"c{i}_{k}" for k in range(size)], dtype=object)
        weights = 1.0 / np.arange(1, size + 1)
        if i == 0:
            weights[-1] *= 1.0 + 4.0 * shift
        columns[f"cat_{i}"] = names[rng.choice(size, rows, p=weights / weights.sum())]
    data = pd.DataFrame(columns)
    logit = 0.04 * (data["num_0"] - 50.0) + 0.3 * np.log(data["num_1"]) - 3.0
    scores = 1.0 / (1.0 + np.exp(-(logit.to_numpy() + rng.normal(0.0, 0.5, rows))))
    return data, scores


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(rows: int, reference_rows: int, repeats: int) -> dict:
    reference, reference_scores = frame(reference_rows, 1)
    profile = reference_profile(reference, reference_scores, SPEC)
    live, live_scores = frame(rows, 2, shift=1.0)

    def report():
        drifts = feature_drift(live, profile, SPEC, psi_threshold=0.2)
        return drifts, prediction_drift(live_scores, profile)

    def baseline():
        return {
            name: stats.ks_2samp(reference[name].dropna(), live[name].dropna()).statistic
            for name in SPEC.numeric_features
        }

    numeric_spec = SPEC.model_copy(update={"features": dict.fromkeys(SPEC.numeric_features, "numeric")})

    def numeric_part():
        return feature_drift(live, profile, numeric_spec, psi_threshold=0.2)

    drifts, prediction_psi = report()
    exact = baseline()
    ks_error = {d.feature: abs(d.ks - exact[d.feature]) for d in drifts if d.kind == "numeric"}
    t = {
        "report": median_seconds(report, repeats),
        "numeric": median_seconds(numeric_part, repeats),
        "baseline": median_seconds(baseline, repeats),
    }
    return {
        "rows": rows,
        "reference_rows": reference_rows,
        "report_s": t["report"],
        "numeric_s": t["numeric"],
        "baseline_s": t["baseline"],
        "speedup": t["baseline"] / t["report"],
        "numeric_speedup": t["baseline"] / t["numeric"],
        "flagged": [d.feature for d in drifts if d.flagged],
        "prediction_psi": prediction_psi,
        "ks_error_continuous": max(e for name, e in ks_error.items() if name not in COUNTS),
        "ks_error_counts": max(e for name, e in ks_error.items() if name in COUNTS),
    }


def report(results: list[dict]) -> str:
    lines = [
        "| rows | report s (16 features + scores) | of which 10 numeric s | ks_2samp x10 vs reference s "
        "| baseline / report | baseline / numeric | flagged | KS diff vs ks_2samp: continuous "
        "| KS diff: integer counts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['report_s']:.3f} | {r['numeric_s']:.3f} | {r['baseline_s']:.3f} | "
            f"{r['speedup']:.2f}x | "
            f"{r['numeric_speedup']:.2f}x | {', '.join(r['flagged'])} | "
            f"{r['ks_error_continuous']:.4f} | {r['ks_error_counts']:.4f} |"
        )
    return "\n".join(lines)


def main(rows: list[int], reference_rows: int = 100_000, repeats: int = 3) -> str:
    return report([run(n, reference_rows, repeats) for n in rows])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(main(args.rows, args.reference_rows, args.repeats))
