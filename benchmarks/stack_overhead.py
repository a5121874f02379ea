"""Fixed overhead: whole-process `inferloop infer --date D` on a small partition with the local
stack up (`inferloop up`: Prefect server, MLflow server, S3 API; the CLI pointed at it through
`<state_dir>/stack/stack.env`) vs the same on embedded defaults (a cold temporary Prefect API
per process, MLflow on SQLite), with where the time goes.

The stack runs on spare ports in a temporary state dir and is always stopped (`inferloop down`).
The breakdown comes from a probe process that does the flow's steps one by one with timestamps
(`--probe`), and from `python -X importtime` over a whole `inferloop infer`.

    python -m benchmarks.stack_overhead [--rows 1000] [--repeats 3]
"""

# Only the standard library at module level: `--probe` times the imports itself.
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

BIN = Path(sys.executable).parent
FIRST_DAY = date(2026, 1, 1)
DAYS = 8  # 7 labelled days to train on (the default window), the last one to score


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seconds_since_process_start() -> float:
    ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - ticks / os.sysconf("SC_CLK_TCK")


def probe(day: date) -> dict[str, float]:
    """The steps of `inferloop infer --date D`, in the flow's order, each timed (in this process)."""
    phases = {"python start": _seconds_since_process_start()}

    def step(name: str, fn):
        started = time.perf_counter()
        value = fn()
        phases[name] = time.perf_counter() - started
        return value

    def imports():
        import inferloop.cli.commands
        import inferloop.flows.batch_inference
        import inferloop.runtime.runners

        return inferloop.flows.batch_inference, inferloop.cli.commands, inferloop.runtime.runners

    def connect():
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            if error := client.api_healthcheck():
                raise RuntimeError(f"Prefect API unhealthy: {error}")

    step("imports (CLI, flow, tasks)", imports)
    step("Prefect API connect", connect)
    from inferloop.core.settings import load_settings
    from inferloop.core.storage import lake_storage
    from inferloop.tasks.model.registry import load_scoring_model, resolve_alias
    from inferloop.tasks.scoring.batch_scoring import score_partition

    settings = load_settings()
    ref = step(
        "MLflow resolve @champion",
        lambda: resolve_alias.fn(settings.registry, settings.registry.champion_alias),
    )
    # As the flow loads it: the compiled library where the version's parity gate passed.
    model = step("MLflow load model", lambda: load_scoring_model(settings.registry, ref))
    step("import great_expectations", lambda: __import__("great_expectations"))
    storage = lake_storage(settings.lake)
    step(
        "gate + score + write",
        lambda: score_partition.fn(
            storage, settings.dataset, model, ref, day, "probe", settings.scoring, settings.gate
        ),
    )
    return phases


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "inferloop"), *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"inferloop {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def prepare(rows: int) -> dict[str, str]:
    """A temp state dir with `DAYS` days of `rows` rows and a @champion trained on embedded defaults.

    The committed suites expect 100..100k rows per day, so they gate these partitions as they are.
    """
    root = Path(tempfile.mkdtemp(prefix="inferloop-bench-stack-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("INFERLOOP_", "PREFECT_", "MLFLOW_"))},
        "INFERLOOP_STATE_DIR": str(root),
        "PREFECT_HOME": str(root / "prefect"),
        # Spare ports: a developer's `make up` on the defaults keeps running undisturbed.
        "INFERLOOP_PREFECT_PORT": str(_free_port()),
        "INFERLOOP_MLFLOW_PORT": str(_free_port()),
        "INFERLOOP_S3_PORT": str(_free_port()),
        "INFERLOOP_SERVE_PORT": str(_free_port()),
    }
    _cli(env, "data", "generate", "--days", str(DAYS), "--rows-per-day", str(rows))
    _cli(env, "train")
    return env


def _with_run_lines(env: dict[str, str]) -> dict[str, str]:
    """`env` for a timed run: Prefect's "Beginning flow run" / "Finished in state" lines reach the
    terminal (`timed_cli` times the flow by them; without --verbose the CLI keeps them off it),
    and the libraries stay as quiet as without --verbose, so the run does the same work."""
    from inferloop.runtime.terminal_logs import QUIET_LIBRARIES, VERBOSE

    return {**QUIET_LIBRARIES, **env, VERBOSE: "1"}


def _stack_env(env: dict[str, str]) -> dict[str, str]:
    """`env` plus what `source <state_dir>/stack/stack.env` would export."""
    text = (Path(env["INFERLOOP_STATE_DIR"]) / "stack" / "stack.env").read_text()
    return {**env, **dict(re.findall(r"^export (\w+)=(.*)$", text, flags=re.MULTILINE))}


def _predictions(env: dict[str, str]) -> Path:
    """Where the runs' predictions go in the local lake (removed so that every run scores)."""
    from inferloop.core import catalog

    return Path(env["INFERLOOP_STATE_DIR"]) / "lake" / catalog.PREDICTIONS


def _import_seconds(env: dict[str, str], day: date) -> tuple[float, dict[str, float]]:
    """Total import time of a whole `inferloop infer`, and per top-level package (self times)."""
    shutil.rmtree(_predictions(env), ignore_errors=True)
    command = "from inferloop.cli.commands import app; app()"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", command, "infer", "--date", day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"inferloop infer under -X importtime failed:\n{result.stderr[-3000:]}")
    packages: Counter = Counter()
    for line in result.stderr.splitlines():
        if match := re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*([\w.]+)", line):
            packages[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    return sum(packages.values()), dict(packages.most_common(8))


def _stack_idle_cores(env: dict[str, str], seconds: float = 10.0) -> float:
    """CPU cores the idle stack uses (every process of the sessions `inferloop up` started)."""
    from benchmarks.process_timing import session_cpu_seconds

    sessions = {int(p.read_text()) for p in (Path(env["INFERLOOP_STATE_DIR"]) / "stack").glob("*.pid")}
    before = session_cpu_seconds(sessions)
    time.sleep(seconds)
    return (session_cpu_seconds(sessions) - before) / seconds


def breakdown(env: dict[str, str], day: date) -> dict:
    """A rerun of the scored partition (no-op), the probe's steps, and -X importtime."""
    from benchmarks.process_timing import timed_cli

    predictions = _predictions(env)
    shutil.rmtree(predictions, ignore_errors=True)
    infer = [str(BIN / "inferloop"), "infer", "--date", day.isoformat()]
    timed_cli(infer, env)
    noop = timed_cli(infer, env)  # the partition is scored: the flow does no work
    shutil.rmtree(predictions, ignore_errors=True)
    probe_run = subprocess.run(
        [sys.executable, "-m", "benchmarks.stack_overhead", "--probe", day.isoformat()],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    if probe_run.returncode != 0:
        raise RuntimeError(f"probe failed:\n{probe_run.stderr[-3000:]}")
    imports_total, imports_by_package = _import_seconds(env, day)
    shutil.rmtree(predictions, ignore_errors=True)
    return {
        "noop_seconds": noop["seconds"],
        "phases": json.loads(probe_run.stdout.strip().splitlines()[-1]),
        "imports_total": imports_total,
        "imports_by_package": imports_by_package,
    }


def run(rows: int, repeats: int) -> tuple[list[dict], float]:
    """Embedded and stack runs take turns, with the stack up throughout (idle, it uses almost no
    CPU: measured), so that other work on the machine falls on both alike."""
    from benchmarks.process_timing import timed_cli

    env = prepare(rows)
    day = FIRST_DAY + timedelta(days=DAYS - 1)
    predictions = _predictions(env)
    infer = [str(BIN / "inferloop"), "infer", "--date", day.isoformat()]
    try:
        _cli(env, "up")
        time.sleep(20)  # the worker and the servers' background services finish starting
        idle_cores = _stack_idle_cores(env)
        stack_sessions = frozenset(
            int(p.read_text()) for p in (Path(env["INFERLOOP_STATE_DIR"]) / "stack").glob("*.pid")
        )
        modes = {
            "embedded defaults (temporary Prefect API, MLflow on SQLite)": (
                _with_run_lines(env),
                frozenset(),
            ),
            "stack up (Prefect + MLflow servers)": (_with_run_lines(_stack_env(env)), stack_sessions),
        }
        runs = {mode: [] for mode in modes}
        for _ in range(repeats):
            for mode, (mode_env, sessions) in modes.items():
                shutil.rmtree(predictions, ignore_errors=True)
                runs[mode].append(timed_cli(infer, mode_env, sessions))
        details = {mode: breakdown(mode_env, day) for mode, (mode_env, _) in modes.items()}
    finally:
        _cli(env, "down")
    shutil.rmtree(env["INFERLOOP_STATE_DIR"])  # only once `down` has stopped what it started
    results = [
        {
            "mode": mode,
            "rows": rows,
            "runs": [r["seconds"] for r in measured],
            **{key: statistics.median(r[key] for r in measured) for key in measured[0]},
            **details[mode],
        }
        for mode, measured in runs.items()
    ]
    return results, idle_cores


def report(results: list[dict], idle_cores: float) -> str:
    lines = [
        "| mode | rows | whole process s (median) | runs s | flow run began at s | flow run s "
        "| flow end to exit s | peak RSS GB | rerun, already scored (no-op) s "
        "| other work on the machine, cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        runs = " / ".join(f"{s:.1f}" for s in r["runs"])
        lines.append(
            f"| {r['mode']} | {r['rows']:,} | {r['seconds']:.1f} | {runs} | {r['flow_began']:.1f} | "
            f"{r['flow_finished'] - r['flow_began']:.1f} | {r['seconds'] - r['flow_finished']:.1f} | "
            f"{r['peak_rss_gb']:.2f} | {r['noop_seconds']:.1f} | {r['others_cores']:.2f} |"
        )
    names = list(results[0]["phases"])
    lines += [
        "",
        "Where the time goes (probe process: the flow's steps one by one, s):",
        "",
        "| step | " + " | ".join(r["mode"].split(" (")[0] for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r['phases'][name]:.2f}" for r in results) + " |")
    lines.append(
        "| sum of the steps | " + " | ".join(f"{sum(r['phases'].values()):.2f}" for r in results) + " |"
    )
    lines.append(
        "| rest of the CLI run (flow/task run records, artifacts, logs, exit) | "
        + " | ".join(f"{r['seconds'] - sum(r['phases'].values()):.2f}" for r in results)
        + " |"
    )
    lines.append(
        "| imports over a whole CLI run (-X importtime, self times) | "
        + " | ".join(f"{r['imports_total']:.2f}" for r in results)
        + " |"
    )
    top = results[-1]["imports_by_package"]
    lines += [
        "",
        "Imports by top-level package (stack run, -X importtime self times, s): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in top.items()),
        "Idle stack CPU (every process `inferloop up` started, 10 s sample 20 s after start): "
        f"{idle_cores:.2f} cores",
    ]
    return "\n".join(lines)


def main(rows: int = 1_000, repeats: int = 3) -> str:
    return report(*run(rows, repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=date.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe)))
    else:
        print(main(args.rows, args.repeats))
