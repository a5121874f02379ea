"""The local stack: Prefect server, MLflow server and an S3 API on loopback, in the background.

Each service runs in its own process group; its PID and log live under `<state_dir>/stack/`.
`stop_stack` stops only processes whose PID file this module wrote.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from inferloop.errors import InferloopError
from inferloop.settings import REPO_ROOT, Settings

WORK_POOL = "inferloop-process"
AWS_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "inferloop-local", "AWS_SECRET_ACCESS_KEY": "inferloop-local"}


class StackError(InferloopError, RuntimeError):
    """A stack service did not start or stop; the message points at its log."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    health_url: str
    ui_url: str

    def pid_file(self, settings: Settings) -> Path:
        return settings.state_dir / "stack" / f"{self.name}.pid"

    def log_file(self, settings: Settings) -> Path:
        return settings.state_dir / "stack" / f"{self.name}.log"


def _bin(name: str) -> str:
    """An executable of this environment (the venv's bin dir), found without relying on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def services(settings: Settings) -> list[Service]:
    host, state = settings.stack_host, settings.state_dir
    prefect = f"http://{host}:{settings.prefect_port}"
    mlflow = f"http://{host}:{settings.mlflow_port}"
    s3 = f"http://{host}:{settings.s3_port}"
    return [
        Service(
            "prefect",
            [_bin("prefect"), "server", "start", "--host", host, "--port", str(settings.prefect_port)],
            f"{prefect}/api/health",
            prefect,
        ),
        # Same SQLite store and artifact root as the embedded mode: runs of `make demo` show up.
        Service(
            "mlflow",
            [
                _bin("mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{state / 'mlflow.db'}",
                "--artifacts-destination",
                str(settings.mlflow_artifact_root),
                "--host",
                host,
                "--port",
                str(settings.mlflow_port),
                "--workers",
                "1",
            ],
            f"{mlflow}/health",
            mlflow,
        ),
        Service("s3", [_bin("moto_server"), "-H", host, "-p", str(settings.s3_port)], f"{s3}/moto-api/", s3),
    ]


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment that points a client (CLI, worker, flow runs) at the running stack."""
    host = settings.stack_host
    return {
        "PREFECT_API_URL": f"http://{host}:{settings.prefect_port}/api",
        "INFERLOOP_TRACKING_URI": f"http://{host}:{settings.mlflow_port}",
        "INFERLOOP_STATE_DIR": str(settings.state_dir),
        "INFERLOOP_S3_ENDPOINT_URL": f"http://{host}:{settings.s3_port}",
        "INFERLOOP_PROJECT_DIR": str(REPO_ROOT),
        **AWS_DUMMY_CREDENTIALS,
    }


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """True while `pid` runs. A zombie (exited, not yet reaped by its parent) is not alive."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True  # no /proc (not Linux): signal 0 is all we know
    return state != "Z"


def _start(settings: Settings, service: Service, env: dict[str, str]) -> None:
    if _running_pid(service.pid_file(settings)):
        return
    if service.health_url and _healthy(service.health_url):
        raise StackError(
            f"Something else already answers on {service.ui_url}: stop it or set "
            f"INFERLOOP_{service.name.upper()}_PORT to a free port"
        )
    service.log_file(settings).parent.mkdir(parents=True, exist_ok=True)
    with service.log_file(settings).open("ab") as log:
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=REPO_ROOT,
        )
    service.pid_file(settings).write_text(str(process.pid))


def _wait_healthy(settings: Settings, service: Service, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(service.health_url):
            return
        if not _running_pid(service.pid_file(settings)):
            break
        time.sleep(0.5)
    raise StackError(
        f"{service.name} did not become healthy at {service.health_url}; see {service.log_file(settings)}"
    )


def _create_bucket(settings: Settings) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{settings.stack_host}:{settings.s3_port}",
        region_name=settings.s3_region,
        aws_access_key_id="inferloop-local",
        aws_secret_access_key="inferloop-local",
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.s3_bucket not in existing:
        s3.create_bucket(Bucket=settings.s3_bucket)


def _prefect(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        [_bin("prefect"), "--no-prompt", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise StackError(f"`prefect {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")


def deploy(settings: Settings) -> None:
    """Create the process work pool and register every deployment in prefect.yaml."""
    env = {**os.environ, **stack_env(settings)}
    _prefect(["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
    _prefect(["deploy", "--all"], env)


def start_stack(settings: Settings, with_worker: bool = True) -> list[Service]:
    env = {**os.environ, **stack_env(settings)}
    started = services(settings)
    for service in started:
        _start(settings, service, env)
    for service in started:
        _wait_healthy(settings, service)
    _create_bucket(settings)
    if with_worker:
        deploy(settings)
        worker = Service("worker", [_bin("prefect"), "worker", "start", "--pool", WORK_POOL], "", "")
        _start(settings, worker, env)
    (settings.state_dir / "stack" / "stack.env").write_text(
        "".join(f"export {k}={v}\n" for k, v in stack_env(settings).items())
    )
    return started


def stop_stack(settings: Settings, grace_seconds: float = 30) -> list[str]:
    """Stop the processes this stack started (and only those); returns their names.

    The worker goes first (so it does not log errors about vanishing servers), then the
    servers together; anything still alive after `grace_seconds` is killed.
    """
    pid_files = sorted((settings.state_dir / "stack").glob("*.pid"), key=lambda p: p.stem != "worker")
    running = {p: pid for p in pid_files if (pid := _running_pid(p))}
    for pid_file, pid in running.items():
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if pid_file.stem == "worker":
            _wait_gone([pid_file], grace_seconds)
    _wait_gone(list(running), grace_seconds)
    for pid_file in running:
        if pid := _running_pid(pid_file):
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    _wait_gone(list(running), 10)  # SIGKILL is delivered asynchronously
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)
    return [p.stem for p in running]


def _wait_gone(pid_files: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_running_pid(p) for p in pid_files):
        time.sleep(0.25)


def stack_status(settings: Settings) -> dict[str, str]:
    status = {}
    for service in services(settings):
        pid = _running_pid(service.pid_file(settings))
        healthy = _healthy(service.health_url)
        status[service.name] = (
            f"up at {service.ui_url}"
            if healthy and pid
            else "answering, not started by inferloop"
            if healthy
            else "starting or unhealthy"
            if pid
            else "down"
        )
    worker_pid = _running_pid(settings.state_dir / "stack" / "worker.pid")
    status["worker"] = f"running (pid {worker_pid}, pool {WORK_POOL})" if worker_pid else "down"
    return status
