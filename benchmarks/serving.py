"""Online scoring, side by side on the same registered model: `inferloop serve` vs `mlflow models
serve` (loopback, bounded in count and time).

(a) single-row requests from one client: p50 / p99; (b) N concurrent clients for T seconds:
requests/s, p99 and failed requests; (c) 1k-row requests: rows/s; (d) for `inferloop serve`,
@champion moved 5 times during (b) between two versions of the model: failed requests, the swaps
the server made and the versions its responses named (`mlflow models serve` resolves the alias
once at start and cannot follow it: "n/a"). Each server gets the request
it takes: inferloop the rows as production sends them (id, time, features: the data contract
applies), MLflow the model's prepared features. The clients run on the same 2 cores as the
servers, which costs both alike. Both versions get their optimised artifact as registration gives
it (`optimised_artifact` on): inferloop serves them as production does, with the compiled library
where the parity gate passed; the table names the runtime that served (`treelite` or `sklearn`).

    python -m benchmarks.serving --single 300 --clients 32 --seconds 30
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import load_average, machine_context
from inferloop.core.offline import prepare_process

BIN = Path(sys.executable).parent
ALIAS_MOVES = 5
CLIENT_PROCESSES = 4  # the concurrent clients' processes (threads spread over them)
POLL_SECONDS = 1.0  # how often `inferloop serve` asks where @champion points, for this benchmark


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


class KeepAliveClient:
    """POSTs to one URL over a kept-alive connection, with the standard library's `http.client`
    (headers and body in one send). The clients share the 2 cores with the server they measure;
    httpx's client took 1.1-1.5 ms of CPU a request here and this one 0.25-0.28 ms (32 client
    threads against `inferloop serve`), so less of the machine goes to the measuring."""

    def __init__(self, url: str, headers: dict, timeout: float = 30):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.headers, self.timeout = headers, timeout
        self.connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        """The response's status and body; a broken connection is dropped (the next post opens
        a new one) and its error raised."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request("POST", self.path, body=body, headers=self.headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _post_ok(client: KeepAliveClient, body: bytes) -> None:
    status, answer = client.post(body)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {answer[:500]!r}")


def single(url: str, headers: dict, payloads: list[bytes]) -> dict:
    latencies, client = [], KeepAliveClient(url, headers)
    try:
        for body in payloads:
            started = time.perf_counter()
            _post_ok(client, body)
            latencies.append(time.perf_counter() - started)
    finally:
        client.close()
    return {"p50_ms": _percentile(latencies, 50), "p99_ms": _percentile(latencies, 99)}


def _client_threads(
    url: str, headers: dict, payloads: list[bytes], offsets: list[int], stride: int, deadline: float
):
    """One client process: a thread per offset, each sending requests back to back until
    `deadline` (wall clock); returns the latencies of the answered requests, the failed count and
    the answers by the `model_version` they name."""
    latencies, failed, versions, lock = [], [0], Counter(), threading.Lock()

    def client_loop(offset: int) -> None:
        mine, named, failures, i = [], Counter(), 0, offset
        client = KeepAliveClient(url, headers)
        while time.time() < deadline:
            started = time.perf_counter()
            try:
                status, answer = client.post(payloads[i % len(payloads)])
            except (OSError, http.client.HTTPException):
                status = 0
            if status == 200:
                mine.append(time.perf_counter() - started)
                named[json.loads(answer).get("model_version", "")] += 1
            else:
                failures += 1
            i += stride
        client.close()
        with lock:
            latencies.extend(mine)
            versions.update(named)
            failed[0] += failures

    threads = [threading.Thread(target=client_loop, args=(offset,)) for offset in offsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failed[0], versions


def concurrent(
    url: str,
    headers: dict,
    payloads: list[bytes],
    clients: int,
    seconds: float,
    meanwhile: Callable[[float], None] | None = None,
    processes: int = CLIENT_PROCESSES,
) -> dict:
    """`clients` clients sending requests back to back for `seconds`, as threads spread over
    `processes` processes, while `meanwhile(seconds)` runs in another thread; `versions`: the
    responses by the `model_version` they name. One process's 32 threads measured their own
    interpreter lock as well as the server: each answer waited for the client's GIL too."""
    latencies, failed, versions = [], 0, Counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        list(pool.map(time.sleep, [0.5] * processes))  # every client process up before the clock starts
        deadline = time.time() + 1.0 + seconds
        jobs = [
            pool.submit(
                _client_threads, url, headers, payloads, list(range(p, clients, processes)), clients, deadline
            )
            for p in range(processes)
        ]
        time.sleep(max(0.0, deadline - seconds - time.time()))
        started = time.perf_counter()
        mover = threading.Thread(target=meanwhile, args=(seconds,)) if meanwhile else None
        if mover:
            mover.start()
        for job in jobs:
            mine, failures, named = job.result()
            latencies.extend(mine)
            failed += failures
            versions.update(named)
        elapsed = time.perf_counter() - started
        if mover:
            mover.join()
    return {
        "requests_per_s": len(latencies) / elapsed,
        "concurrent_p99_ms": _percentile(latencies, 99),
        "failed": failed,
        "versions": dict(versions),
    }


def large(url: str, headers: dict, payloads: list[bytes], rows: int) -> dict:
    client = KeepAliveClient(url, headers, timeout=60)
    try:
        started = time.perf_counter()
        for body in payloads:
            _post_ok(client, body)
        elapsed = time.perf_counter() - started
    finally:
        client.close()
    return {"rows_per_s": rows * len(payloads) / elapsed}


def alias_mover(tracking_uri: str, model_name: str, versions: tuple[str, str]) -> Callable[[float], None]:
    """Moves @champion ALIAS_MOVES times, evenly spread over `seconds`, to the other version each
    time (as a promotion or a rollback in the MLflow UI does)."""
    from mlflow import MlflowClient

    def move(seconds: float) -> None:
        client, started = MlflowClient(tracking_uri), time.monotonic()
        for k in range(1, ALIAS_MOVES + 1):
            time.sleep(max(0.0, started + seconds * k / (ALIAS_MOVES + 1) - time.monotonic()))
            client.set_registered_model_alias(model_name, "champion", versions[k % 2])

    return move


def model_swaps(base: str, headers: dict) -> int:
    """How many times `inferloop serve` has swapped in a new version (its /metrics)."""
    metrics = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
    found = re.search(r"^inferloop_serve_model_swaps_total (\S+)$", metrics, flags=re.MULTILINE)
    return int(float(found.group(1))) if found else 0


def served_runtime(log: Path) -> str:
    """The runtime `inferloop serve` named when it loaded the version."""
    found = re.search(r"now serving \S+ v\S+ \((\w+)\)", log.read_text())
    return found.group(1) if found else "unknown"


def main(
    single_requests: int = 300,
    clients: int = 32,
    seconds: float = 30,
    large_requests: int = 10,
    client_processes: int = CLIENT_PROCESSES,
) -> str:
    from benchmarks.whole_process import MODEL, prepare
    from inferloop.serving.keys import add_key
    from inferloop.tasks.data.feeds import prepare_features

    load_before = load_average()
    env, (table, settings, _) = prepare(20_000, versions=2)  # @champion on v1; the moves need v2
    root = Path(env["INFERLOOP_STATE_DIR"])
    frame = table.to_pandas()
    records = frame.assign(event_time=frame["event_time"].map(lambda t: t.isoformat()))
    features = prepare_features(frame, settings.dataset)
    move_alias = alias_mover(settings.registry.tracking_uri, MODEL, ("1", "2"))

    def ours(first: int, rows: int) -> bytes:
        return json.dumps(
            {"dataframe_records": json.loads(records.iloc[first : first + rows].to_json(orient="records"))}
        ).encode()

    def theirs(first: int, rows: int) -> bytes:
        return json.dumps(
            {"dataframe_split": json.loads(features.iloc[first : first + rows].to_json(orient="split"))}
        ).encode()

    key = add_key(root / "serving" / "keys.json", "bench", ["score", "admin"])  # admin: /metrics
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
        path, log = f"{BIN}{os.pathsep}{env.get('PATH', '')}", root / f"{name.split()[0]}.log"
        process = _start(
            command,
            base + health,
            # No per-key rate limit: the benchmark's one key is all 32 clients.
            {
                **env,
                "PATH": path,
                "INFERLOOP_SERVE_FLUSH_SECONDS": "5",
                "INFERLOOP_SERVE_RATE_PER_SECOND": "0",
                "INFERLOOP_SERVE_POLL_SECONDS": str(POLL_SECONDS),
            },
            log,
        )
        try:
            url = f"{base}/invocations"
            single(url, headers, [body(i, 1) for i in range(20)])  # warm-up
            follows_alias = name == "inferloop serve"
            if follows_alias:  # the load was logged before the warm-up was answered
                name = f"{name} ({served_runtime(log)})"
                swaps_before = model_swaps(base, headers)
            results[name] = {
                **single(url, headers, [body(i, 1) for i in range(single_requests)]),
                **concurrent(
                    url,
                    headers,
                    [body(i, 1) for i in range(2_000)],
                    clients,
                    seconds,
                    move_alias if follows_alias else None,
                    client_processes,
                ),
                **large(url, headers, [body(i * 1_000, 1_000) for i in range(large_requests)], 1_000),
            }
            if follows_alias:
                results[name]["swaps"] = model_swaps(base, headers) - swaps_before
            print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return report(results, clients, client_processes, seconds, load_before)


def report(results: dict, clients: int, client_processes: int, seconds: float, load_before: str) -> str:
    lines = [
        machine_context(),
        f"load average before: {load_before}",
        f"{clients} concurrent clients: threads in {client_processes} processes",
        "",
        f"| server | 1 row p50 ms | 1 row p99 ms | {clients} clients req/s | p99 ms | failed "
        f"| 1k rows/s | {ALIAS_MOVES} alias moves: swaps | responses by version |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        followed = (
            f"{r['swaps']} | " + ", ".join(f"v{v}: {n:,}" for v, n in sorted(r["versions"].items()))
            if "swaps" in r
            else "n/a (resolves @champion once, at start) | n/a"
        )
        lines.append(
            f"| {name} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['requests_per_s']:.0f} | "
            f"{r['concurrent_p99_ms']:.0f} | {r['failed']} | {r['rows_per_s']:,.0f} | {followed} |"
        )
    ours = next((r for name, r in results.items() if name.startswith("inferloop serve")), None)
    theirs = results.get("mlflow models serve")
    if ours and theirs:
        lines.append(
            f"\n{clients} clients for {seconds:.0f} s: inferloop serve answered "
            f"{ours['requests_per_s'] / theirs['requests_per_s']:.1f}x the requests/s of mlflow models serve."
        )
    if ours:
        lines.append(
            f"(d) during inferloop serve's {seconds:.0f} s, @champion moved {ALIAS_MOVES} times, "
            f"{seconds / (ALIAS_MOVES + 1):.1f} s apart; the server polls every {POLL_SECONDS:g} s, so a "
            "move back within one poll (plus a model load) goes unseen."
        )
    lines.append(f"load average after: {load_average()}")
    return "\n".join(lines)


if __name__ == "__main__":
    prepare_process()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=300, help="single-row requests, one client")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--client-processes", type=int, default=CLIENT_PROCESSES, help="processes the clients' threads run in"
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--large", type=int, default=10, help="1k-row requests")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    print(main(args.single, args.clients, args.seconds, args.large, args.client_processes))
