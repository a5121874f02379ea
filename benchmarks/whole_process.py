"""Whole processes, as a user runs them: `inferloop infer` (embedded defaults: Prefect's temporary
API, MLflow on SQLite) vs `mlflow models predict` on the same registered model and rows, with
wall time and peak RSS from /usr/bin/time -v."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import bench_lake, train_model
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.model.registry import SKOPS_TRUSTED_TYPES, model_code

BIN = Path(sys.executable).parent
MODEL = "bench-classifier"


def timed_process(command: list[str], env: dict[str, str]) -> dict:
    """Wall seconds and peak RSS (GB) of a whole process, from GNU time."""
    result = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return {"seconds": hours * 3600 + minutes * 60 + seconds, "peak_rss_gb": rss_kb / 1e6}


def prepare(rows: int) -> tuple[dict[str, str], object]:
    """A state dir with one `rows`-row partition, a suite for it and a registered @champion."""
    import mlflow
    from mlflow.models import infer_signature

    root = Path(tempfile.mkdtemp(prefix="inferloop-bench-proc-"))
    settings, _, table = bench_lake(rows, root)
    model = train_model(settings)
    mlflow.set_tracking_uri(settings.registry.tracking_uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        example = prepare_features(table.slice(0, 5).to_pandas(), settings.dataset)
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL,
            input_example=example,
            signature=infer_signature(example, model.predict_proba(example)),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            code_paths=model_code(Path(tempfile.mkdtemp(dir=root))),
        )
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", "1")
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
    return env, (table, settings)


def run(rows: int, with_mlflow: bool) -> dict:
    env, (table, settings) = prepare(rows)
    result = {"rows": rows}
    result["inferloop"] = timed_process([str(BIN / "inferloop"), "infer", "--date", "2026-01-01"], env)
    if with_mlflow:
        csv = Path(env["INFERLOOP_STATE_DIR"]) / "input.csv"
        prepare_features(table.to_pandas(), settings.dataset).to_csv(csv, index=False)
        output = Path(env["INFERLOOP_STATE_DIR"]) / "mlflow-predictions.json"
        result["mlflow"] = timed_process(
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
    return result


def report(results: list[dict]) -> str:
    lines = [
        "| rows | inferloop infer s | peak RSS GB | mlflow models predict s | peak RSS GB | speed-up |",
        "|---|---|---|---|---|---|",
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
        lines.append(f"| {r['rows']:,} | {ours['seconds']:.1f} | {ours['peak_rss_gb']:.2f} | {other} |")
    return "\n".join(lines)


def main(rows: list[int], mlflow_rows: set[int]) -> str:
    return report([run(n, n in mlflow_rows) for n in rows])
