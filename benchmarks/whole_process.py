"""Whole processes, as a user runs them: `inferloop infer` (embedded defaults: Prefect's temporary
API, MLflow on SQLite) vs `mlflow models predict` on the same registered model and rows, with
wall time and peak RSS from /usr/bin/time -v.

The model gets its optimised artifact as registration gives it, so `inferloop infer` scores with
the compiled library where its parity gate passed; the table names the runtime that scored (from
the scoring manifest). Where mlflow is measured, `inferloop infer` is also run on the same model
registered without the artifact (scikit-learn), the runtime earlier figures were measured with.

    python -m benchmarks.whole_process [--rows 1000000 5000000 10000000] [--mlflow-rows 1000000 5000000]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.common import bench_lake, load_average, machine_context, register_version, train_model
from inferloop.core import catalog
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import prepare_features

BIN = Path(sys.executable).parent
MODEL = "bench-classifier"
DAY = date(2026, 1, 1)


def timed_process(command: list[str], env: dict[str, str]) -> dict:
    """Wall seconds and peak RSS (GB) of a whole process, from GNU time."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return {"seconds": hours * 3600 + minutes * 60 + seconds, "peak_rss_gb": rss_kb / 1e6}


def prepare(rows: int, versions: int = 1) -> tuple[dict[str, str], tuple]:
    """A state dir with one `rows`-row partition, a suite for it, and one trained model registered
    `versions` times (v1..vN), each with its optimised artifact; @champion on v1."""
    import mlflow

    root = Path(tempfile.mkdtemp(prefix="inferloop-bench-proc-"))
    settings, _, table = bench_lake(rows, root)
    model = train_model(settings)
    frame = table.slice(0, 2_000).to_pandas()
    for _ in range(versions):
        version, runtime = register_version(settings, model, frame, MODEL)
        print(f"{MODEL} v{version}: optimised artifact {runtime}", file=sys.stderr, flush=True)
    mlflow.MlflowClient(settings.registry.tracking_uri).set_registered_model_alias(MODEL, "champion", "1")
    env = {
        **os.environ,
        "INFERLOOP_STATE_DIR": str(root),
        "INFERLOOP_STORAGE_URI": settings.lake.storage_uri,
        "INFERLOOP_TRACKING_URI": settings.registry.tracking_uri,
        "INFERLOOP_EXPECTATIONS_DIR": str(settings.gate.expectations_dir),
        "INFERLOOP_MODEL_NAME": MODEL,
        "MLFLOW_TRACKING_URI": settings.registry.tracking_uri,
        "PREFECT_HOME": str(root / "prefect"),
    }
    # Prefect's database exists, as on any run after a machine's first: the comparison is of a
    # daily scoring run, not of the one-time creation of Prefect's tables (~3 s).
    subprocess.run([str(BIN / "prefect"), "server", "database", "upgrade", "-y"], env=env, check=True)
    return env, (table, settings, model)


def infer(env: dict[str, str], settings, version: str) -> dict:
    """A whole `inferloop infer` of the partition with @champion on `version`, and the runtime
    that scored it (from the scoring manifest)."""
    import mlflow

    mlflow.MlflowClient(settings.registry.tracking_uri).set_registered_model_alias(MODEL, "champion", version)
    measured = timed_process([str(BIN / "inferloop"), "infer", "--date", DAY.isoformat()], env)
    manifest = lake_storage(settings.lake).read_json(catalog.predictions_manifest(MODEL, version, DAY))
    return {**measured, "runtime": manifest.get("runtime", "sklearn")}


def run(rows: int, with_mlflow: bool) -> list[dict]:
    """One row per runtime `inferloop infer` scored with (compiled first; scikit-learn too when
    mlflow is measured), each with mlflow's figures where measured."""
    env, (table, settings, model) = prepare(rows)
    results = [{"rows": rows, "inferloop": infer(env, settings, "1")}]
    if with_mlflow:
        # The same model without its optimised artifact, as `optimised_artifact` off registers it.
        frame = table.slice(0, 2_000).to_pandas()
        sklearn_version, _ = register_version(settings, model, frame, MODEL, optimised=False)
        results.append({"rows": rows, "inferloop": infer(env, settings, sklearn_version)})
        csv = Path(env["INFERLOOP_STATE_DIR"]) / "input.csv"
        prepare_features(table.to_pandas(), settings.dataset).to_csv(csv, index=False)
        output = Path(env["INFERLOOP_STATE_DIR"]) / "mlflow-predictions.json"
        mlflow_figures = timed_process(
            [
                str(BIN / "mlflow"),
                "models",
                "predict",
                "-m",
                f"models:/{MODEL}/1",
                "-i",
                str(csv),
                "-t",
                "csv",
                "-o",
                str(output),
                "--env-manager",
                "local",
            ],
            env,
        )
        for result in results:
            result["mlflow"] = mlflow_figures
    return results


def report(results: list[dict], load_before: str) -> str:
    lines = [
        machine_context(),
        f"load average before: {load_before}",
        "",
        "| rows | runtime | inferloop infer s | peak RSS GB "
        "| mlflow models predict s | peak RSS GB | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ours, theirs = r["inferloop"], r.get("mlflow")
        other = (
            (
                f"{theirs['seconds']:.1f} | {theirs['peak_rss_gb']:.2f} | "
                f"{theirs['seconds'] / ours['seconds']:.2f}x"
            )
            if theirs
            else "- | - | -"
        )
        lines.append(
            f"| {r['rows']:,} | {ours['runtime']} | {ours['seconds']:.1f} | "
            f"{ours['peak_rss_gb']:.2f} | {other} |"
        )
    lines.append(f"\nload average after: {load_average()}")
    return "\n".join(lines)


def main(rows: list[int], mlflow_rows: set[int]) -> str:
    load_before = load_average()
    return report([result for n in rows for result in run(n, n in mlflow_rows)], load_before)


if __name__ == "__main__":
    from inferloop.core.offline import prepare_process

    prepare_process()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--mlflow-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    print(main(args.rows, set(args.mlflow_rows)))
