"""Online scoring, side by side on the same registered model: `inferloop serve` vs `mlflow models
serve` (loopback, bounded in count and time).

(a) single-row requests from one client: p50 / p99; (b) N concurrent clients for T seconds:
requests/s, p99 and failed requests; (c) 1k-row requests: rows/s. Each server gets the request
it takes: inferloop the rows as production sends them (id, time, features: the data contract
applies), MLflow the model's prepared features. The clients run on the same 2 cores as the
servers, which costs both alike.

    python -m benchmarks.serving --single 300 --clients 32 --seconds 30
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from inferloop.core.offline import prepare_process

BIN = Path(sys.executable).parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], url: str, env: dict, log: Path, timeout: float = 180) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def _percentile(latencies: list[float], q: float) -> float:
    return float(np.percentile(np.array(latencies) * 1000, q)) if latencies else float("nan")


def single(url: str, headers: dict, payloads: list[bytes]) -> dict:
    latencies = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for body in payloads:
            started = time.perf_counter()
            client.post(url, content=body).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return {"p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99)}


def concurrent(url: str, headers: dict, payloads: list[bytes], clients: int, seconds: float) -> dict:
    latencies, failed, lock = [], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop(offset: int) -> None:
        mine, i = [], offset
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = client.post(url, content=payloads[i % len(payloads)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    mine.append(time.perf_counter() - started)
                else:
                    with lock:
                        failed[0] += 1
                i += clients
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": len(latencies) / elapsed,
        "concurrent_p99_ms": _percentile(latencies, 99),
        "failed": failed[0],
    }


def large(url: str, headers: dict, payloads: list[bytes], rows: int) -> dict:
    with httpx.Client(headers=headers, timeout=60) as client:
        started = time.perf_counter()
        for body in payloads:
            client.post(url, content=body).raise_for_status()
        elapsed = time.perf_counter() - started
    return {"rows_per_s": rows * len(payloads) / elapsed}


def main(single_requests: int = 300, clients: int = 32, seconds: float = 30, large_requests: int = 10) -> str:
    from benchmarks.whole_process import MODEL, prepare
    from inferloop.serving.keys import add_key
    from inferloop.tasks.data.feeds import prepare_features

    env, (table, settings) = prepare(20_000)
    root = Path(env["INFERLOOP_STATE_DIR"])
    frame = table.to_pandas()
    records = frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat()))
    features = prepare_features(frame, settings.dataset)

    def ours(first: int, rows: int) -> bytes:
        return json.dumps(
            {"dataframe_records": json.loads(records.iloc[first : first + rows].to_json(orient="records"))}
        ).encode()

    def theirs(first: int, rows: int) -> bytes:
        return json.dumps(
            {"dataframe_split": json.loads(features.iloc[first : first + rows].to_json(orient="split"))}
        ).encode()

    key = add_key(root / "serving" / "keys.json", "bench", ["score"])
    ours_port, theirs_port = _free_port(), _free_port()
    servers = {
        "inferloop serve": (
            [str(BIN / "inferloop"), "serve", "--port", str(ours_port)],
            f"http://127.0.0.1:{ours_port}",
            "/health/ready",
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            ours,
        ),
        "mlflow models serve": (
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@champion",
                "-p",
                str(theirs_port),
                "--env-manager",
                "local",
                "-w",
                "1",
            ],
            f"http://127.0.0.1:{theirs_port}",
            "/health",
            {"Content-Type": "application/json"},
            theirs,
        ),
    }
    results = {}
    for name, (command, base, health, headers, body) in servers.items():
        # mlflow models serve runs `uvicorn` from PATH: the venv's.
        path = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        process = _start(
            command,
            base + health,
            # No per-key rate limit: the benchmark's one key is all 32 clients.
            {
                **env,
                "PATH": path,
                "INFERLOOP_SERVE_FLUSH_SECONDS": "5",
                "INFERLOOP_SERVE_RATE_PER_SECOND": "0",
            },
            root / f"{name.split()[0]}.log",
        )
        try:
            url = f"{base}/invocations"
            single(url, headers, [body(i, 1) for i in range(20)])  # warm-up
            results[name] = {
                **single(url, headers, [body(i, 1) for i in range(single_requests)]),
                **concurrent(url, headers, [body(i, 1) for i in range(2_000)], clients, seconds),
                **large(url, headers, [body(i * 1_000, 1_000) for i in range(large_requests)], 1_000),
            }
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return report(results, clients, seconds)


def report(results: dict, clients: int, seconds: float) -> str:
    lines = [
        f"| server | 1 row p50 ms | 1 row p99 ms | {clients} clients req/s | p99 ms | failed | 1k rows/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests_per_s']:.0f} | "
            f"{r['concurrent_p99_ms']:.0f} | {r['failed']} | {r['rows_per_s']:,.0f} |"
        )
    ours, theirs = results.get("inferloop serve"), results.get("mlflow models serve")
    if ours and theirs:
        lines.append(
            f"\n{clients} clients for {seconds:.0f} s: inferloop serve answered "
            f"{ours['requests_per_s'] / theirs['requests_per_s']:.1f}x the requests/s of mlflow models serve."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    prepare_process()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=300, help="single-row requests, one client")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--large", type=int, default=10, help="1k-row requests")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    print(main(args.single, args.clients, args.seconds, args.large))
