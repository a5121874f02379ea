"""Dask scale-out: the whole `inferloop infer --from D1 --to D2` (flows/batch_inference.py) on a
separately started `dask scheduler` + `dask worker --nworkers N --nthreads 1` (N = 1, then 2),
against the natural baseline, the default thread runner (no Dask; OpenMP on every core).

Dask workers run with OMP_NUM_THREADS=1 so 1 vs 2 workers measures scale-out, not OpenMP.
Each configuration runs `repeats` times, taking turns with the others (predictions deleted in
between, so every run scores); medians are reported. Besides the whole process, the scoring span
comes from the manifests (first partition start to last partition end), without the fixed
start-up cost.

    python -m benchmarks.dask_scaling [--days 4] [--rows-per-day 500000] [--repeats 3]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.process_timing import timed_cli
from inferloop.core import catalog
from inferloop.core.settings import REPO_ROOT

BIN = Path(sys.executable).parent
FIRST_DAY = date(2026, 1, 1)


def cli(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([str(BIN / "inferloop"), *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"inferloop {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )


def prepare(days: int, rows_per_day: int) -> dict[str, str]:
    """A temp state dir holding `days` partitions of the synthetic feed, suites proposed from the
    first two days (the committed ones expect 5k-row days) and a @champion trained on them."""
    root = Path(tempfile.mkdtemp(prefix="inferloop-bench-dask-"))
    shutil.copytree(REPO_ROOT / "expectations", root / "expectations")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INFERLOOP_", "PREFECT_", "MLFLOW_"))},
        "INFERLOOP_STATE_DIR": str(root),
        "INFERLOOP_EXPECTATIONS_DIR": str(root / "expectations"),
        "PREFECT_HOME": str(root / "prefect"),
    }
    env.pop("OMP_NUM_THREADS", None)  # the thread runner's default: OpenMP on every core
    second = (FIRST_DAY + timedelta(days=1)).isoformat()
    cli(env, "data", "generate", "--days", str(days), "--rows-per-day", str(rows_per_day))
    cli(env, "expectations", "suggest", "--from", f"{FIRST_DAY}..{second}")
    cli(env, "train", "--start", FIRST_DAY.isoformat(), "--end", second)
    return env


class DaskCluster:
    """`dask scheduler` and one `dask worker --nworkers N --nthreads 1`, as separate processes."""

    def __init__(self, env: dict[str, str], workers: int, root: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        self.env = {**env, "OMP_NUM_THREADS": "1"}
        self.workers, self.root, self.processes = workers, root, []

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.root / f"dask-{name}.log").open("ab")
        self.processes.append(
            subprocess.Popen(
                [str(BIN / "dask"), *args, "--no-dashboard"],
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def __enter__(self) -> "DaskCluster":
        from distributed import Client

        port = self.address.rsplit(":", 1)[1]
        self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", port)
        self._spawn(
            f"workers-{self.workers}",
            "worker",
            self.address,
            "--nworkers",
            str(self.workers),
            "--nthreads",
            "1",
            "--local-directory",
            str(self.root / "dask-scratch"),
        )
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(self.workers, timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):  # workers first, then the scheduler
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def scoring_span(root: Path) -> float:
    """Wall seconds from the first partition's start to the last one's end, from each
    manifest's `seconds` and the time it was written."""
    starts, ends = [], []
    for manifest in (root / "lake" / catalog.PREDICTIONS).rglob(catalog.MANIFEST):
        end = manifest.stat().st_mtime
        starts.append(end - json.loads(manifest.read_text())["seconds"])
        ends.append(end)
    return max(ends) - min(starts)


def run_once(command: list[str], env: dict[str, str], sessions: frozenset[int]) -> dict:
    root = Path(env["INFERLOOP_STATE_DIR"])
    shutil.rmtree(root / "lake" / catalog.PREDICTIONS, ignore_errors=True)  # so every run scores
    timed = timed_cli(command, env, sessions)
    return {**timed, "span_s": scoring_span(root)}


def run(days: int, rows_per_day: int, repeats: int) -> list[dict]:
    """Configurations take turns (thread, 1 worker, 2 workers, thread, ...) so that other work
    on the machine falls on all of them alike; both clusters stay up throughout. Each cluster
    first does one untimed run: its workers start their own Prefect client then (see the note)."""
    env = prepare(days, rows_per_day)
    root = Path(env["INFERLOOP_STATE_DIR"])
    last = (FIRST_DAY + timedelta(days=days - 1)).isoformat()
    infer = [str(BIN / "inferloop"), "infer", "--from", FIRST_DAY.isoformat(), "--to", last]
    with DaskCluster(env, 1, root) as one, DaskCluster(env, 2, root) as two:
        sessions = frozenset(p.pid for cluster in (one, two) for p in cluster.processes)
        configs = {"thread runner (default, OpenMP on 2 cores)": infer}
        for cluster in (one, two):
            configs[f"dask {cluster.workers} worker{'s' if cluster.workers > 1 else ''} x 1 thread"] = [
                *infer,
                "--runner",
                "dask",
                "--dask-address",
                cluster.address,
            ]
        first = {
            name: run_once(command, env, sessions) for name, command in configs.items() if "dask" in name
        }
        runs = {name: [] for name in configs}
        for _ in range(repeats):
            for name, command in configs.items():
                runs[name].append(run_once(command, env, sessions))
    shutil.rmtree(root)
    return [
        {
            "config": name,
            "rows": days * rows_per_day,
            "runs": measured,
            "first_run_s": first[name]["seconds"] if name in first else None,
            **{key: statistics.median(r[key] for r in measured) for key in measured[0]},
        }
        for name, measured in runs.items()
    ]


def report(results: list[dict]) -> str:
    one = next(r for r in results if r["config"].startswith("dask 1"))
    lines = [
        "| configuration | rows | whole process s (median) | runs s | rows/s (whole process) "
        "| scoring span s | rows/s (span) | vs 1 worker: whole / span | first run on fresh workers s "
        "| peak RSS GB (flow process) | other work on the machine, cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        runs = " / ".join(f"{x['seconds']:.1f}" for x in r["runs"])
        first = f"{r['first_run_s']:.1f}" if r["first_run_s"] else "-"
        lines.append(
            f"| {r['config']} | {r['rows']:,} | {r['seconds']:.1f} | {runs} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['span_s']:.1f} | {r['rows'] / r['span_s']:,.0f} | "
            f"{one['seconds'] / r['seconds']:.2f}x / {one['span_s'] / r['span_s']:.2f}x | {first} | "
            f"{r['peak_rss_gb']:.2f} | {r['others_cores']:.2f} |"
        )
    return "\n".join(lines)


def main(days: int = 4, rows_per_day: int = 500_000, repeats: int = 3) -> str:
    return report(run(days, rows_per_day, repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--rows-per-day", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    print(main(args.days, args.rows_per_day, args.repeats))
    print(f"\n(benchmark took {time.perf_counter() - started:.0f} s)")
