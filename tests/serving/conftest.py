"""`inferloop serve` as a real process on a loopback port, in front of the session's MLflow server,
with its own lake, keys file and registered model (copies of the pool's versions: no training)."""

import gc
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import BIN, free_port, start_server

ROW_DAY_INDEX = 5  # a day of the pool's feed after `before`'s window


@dataclass
class Endpoint:
    url: str
    process: subprocess.Popen
    log: Path
    lake: Path
    model_name: str
    score_key: str
    admin_key: str
    tracking_uri: str

    def post(self, payload=None, key: str | None = "score", **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        token = {"score": self.score_key, "admin": self.admin_key}.get(key, key)
        if token:
            headers = {"Authorization": f"Bearer {token}", **headers}
        if payload is not None:
            kwargs["json"] = payload
        return httpx.post(f"{self.url}/invocations", headers=headers, timeout=30, verify=False, **kwargs)

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        token = {"score": self.score_key, "admin": self.admin_key}.get(key, key)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30, verify=False)

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_endpoint(
    root: Path,
    tracking_uri: str,
    model_name: str,
    extra_env: dict[str, str] | None = None,
    scheme="http",
    port: int | None = None,
) -> Endpoint:
    """`inferloop serve` on a free port; returns once /health/live answers (the model may still load)."""
    from inferloop.serving.keys import add_key

    root.mkdir(parents=True, exist_ok=True)
    keys_file = root / "keys.json"
    score_key = add_key(keys_file, "client", ["score"])
    admin_key = add_key(keys_file, "operator", ["admin"])
    port = port or free_port()
    env = {
        **os.environ,
        "INFERLOOP_STORAGE_URI": (root / "lake").as_uri(),
        "INFERLOOP_TRACKING_URI": tracking_uri,
        "INFERLOOP_MODEL_NAME": model_name,
        "INFERLOOP_GX_RUNTIME_DIR": str(root / "gx"),
        "INFERLOOP_SERVE_PORT": str(port),
        "INFERLOOP_SERVE_KEYS_FILE": str(keys_file),
        "INFERLOOP_SERVE_POLL_SECONDS": "1",
        "INFERLOOP_SERVE_FLUSH_SECONDS": "1",
        **(extra_env or {}),
    }
    log = root / "serve.log"
    url = f"{scheme}://127.0.0.1:{port}"
    if scheme == "https":
        process = _start_https(env, log, url)
    else:
        process = start_server([str(BIN / "inferloop"), "serve"], f"{url}/health/live", log, env=env)
    return Endpoint(url, process, log, root / "lake", model_name, score_key, admin_key, tracking_uri)


def _start_https(env, log: Path, url: str) -> subprocess.Popen:
    import time

    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "inferloop"), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early; log:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(f"{url}/health/live", verify=False, timeout=2)
            return process
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not live; log:\n{log.read_text()[-3000:]}")


def wait_until(condition, timeout: float = 60, interval: float = 0.25, what: str = "condition"):
    """The first value of `condition()` other than None or False."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s")


def wait_ready(endpoint: Endpoint, version: str | None = None, timeout: float = 120) -> dict:
    def ready():
        response = endpoint.get("/health/ready")
        body = response.json()
        if response.status_code == 200 and (version is None or body["version"] == version):
            return body
        return None

    return wait_until(ready, timeout, what=f"{endpoint.url} ready with version {version}")


def feed_records(rows: int, first: int = 0, day_index: int = ROW_DAY_INDEX) -> list[dict]:
    """Rows of the pool's feed as a client sends them (JSON values, ISO times)."""
    from inferloop.tasks.data.synthetic import generate_day
    from tests.fixtures.pool import FEED

    features, _ = generate_day(FEED, day_index)
    chosen = features.iloc[first : first + rows].copy()
    chosen["event_time"] = chosen["event_time"].map(lambda t: t.isoformat())
    return json.loads(chosen.to_json(orient="records"))


def unique_model_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def in_process_endpoint(root: Path, monkeypatch, loaded: bool = True, **knobs: str) -> Iterator:
    """The endpoint's real app in this process (a `TestClient`), on the lake, MLflow server and
    model the environment names, with its keys file and GX runtime under `root` and `knobs`
    (INFERLOOP_<NAME> values); yields the client once a model is loaded (at once when not
    `loaded`: the test sees the endpoint before a champion exists). Leaving the block
    shuts the app down as SIGTERM does: every scored row is written to the lake."""
    import warnings

    from inferloop.core.settings import load_settings
    from inferloop.serving.app import create_app

    with warnings.catch_warnings():  # starlette's note that it will move from httpx to httpx2
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    settings = {"GX_RUNTIME_DIR": str(root / "gx"), "SERVE_KEYS_FILE": str(root / "keys.json")}
    for name, value in (settings | {"SERVE_POLL_SECONDS": "1"} | knobs).items():
        monkeypatch.setenv(f"INFERLOOP_{name.upper()}", value)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as `inferloop serve` sets it
    # The app freezes the heap and raises the young collection threshold once its first model
    # is loaded (`settle_heap`), as a server process should: undone around each app here, so
    # each starts unfrozen and the test process keeps its own settings.
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        with TestClient(create_app(load_settings())) as client:
            if loaded:
                wait_until(lambda: client.get("/health/ready").status_code == 200, 120, what="a model loaded")
            yield client
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
