"""The stack: Prefect, MLflow, S3 API (and for the prod profile PostgreSQL and Dask) on loopback,
in the background.

Each service runs in its own process group; its PID and log live under `<state_dir>/stack/`.
`stop_stack` stops only processes whose PID file this module wrote. What runs is the service table
(`inferloop.stack.services`), for the profile `INFERLOOP_STACK_PROFILE` names.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from pathlib import Path

from inferloop.core.errors import InferloopError
from inferloop.core.owners import pid_alive
from inferloop.core.periods import Partitioning
from inferloop.core.settings import REPO_ROOT, Settings
from inferloop.stack import mlflow_roles, postgres
from inferloop.stack.alerts import AppliedAlerts, apply_alerts_file
from inferloop.stack.alerts_config import ALERTS_FILE, load_alerts
from inferloop.stack.credentials import stack_credentials, write_private_env_file
from inferloop.stack.dask_tls import client_security, ensure_certificates, tls_dir
from inferloop.stack.mlflow_roles import ADMIN_USER, APPROVER_ROLE, READER_ROLE, READER_USER, Account
from inferloop.stack.processes import (
    Process,
    executable,
    service_stages,
    worker_processes,
    write_mlflow_auth_config,
)
from inferloop.stack.services import WORK_POOL, stack_env


class StackError(InferloopError, RuntimeError):
    """A stack service did not start or stop; the message points at its log."""


def _healthy(url: str) -> bool:
    try:
        if url.startswith("tcp://"):
            address = urllib.parse.urlsplit(url)
            with socket.create_connection((address.hostname, address.port), timeout=2):
                return True
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _start(settings: Settings, service: Process, env: dict[str, str]) -> None:
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
            env={**env, **service.env},
            start_new_session=True,
            cwd=REPO_ROOT if service.user is None else "/",
            user=service.user,
        )
    service.pid_file(settings).write_text(str(process.pid))


def _wait_healthy(settings: Settings, service: Process, timeout: float = 120) -> None:
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


def _create_bucket(settings: Settings, env: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=env["INFERLOOP_S3_ENDPOINT_URL"],
        region_name=settings.lake.s3_region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.stack.s3_bucket not in existing:
        s3.create_bucket(Bucket=settings.stack.s3_bucket)


def _prefect(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        [executable("prefect"), "--no-prompt", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise StackError(f"`prefect {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}")


def deployment_crons(partitioning: Partitioning) -> dict[str, str]:
    """The crons prefect.yaml's scheduled deployments take (`{{ $NAME }}` there): scoring, then
    monitoring, once per partition of the feed, after it ends (UTC). A daily cron on a monthly
    feed would rescore the same month every day; on an hourly one it would score one hour a day."""
    if partitioning.unit == "hour":
        return {"SCORING_CRON": "10 * * * *", "MONITORING_CRON": "40 * * * *"}
    day_of_month = "1" if partitioning.unit == "month" else "*"
    day_of_week = "1" if partitioning.unit == "week" else "*"  # an ISO week starts on Monday
    return {
        name: f"30 {hour} {day_of_month} * {day_of_week}"
        for name, hour in (("SCORING_CRON", 2), ("MONITORING_CRON", 3))
    }


def deploy(settings: Settings) -> AppliedAlerts | None:
    """Create the process work pool, register every deployment in prefect.yaml (its schedules
    follow the dataset's partitions) and apply alerts.yaml (when the repository has one; it is
    checked before anything is registered)."""
    env = {**os.environ, **stack_env(settings), **deployment_crons(settings.dataset.partitioning)}
    alerts = load_alerts(ALERTS_FILE) if ALERTS_FILE.exists() else None
    _prefect(["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
    _prefect(["deploy", "--all"], env)
    return apply_alerts_file(alerts, env) if alerts else None


def start_stack(settings: Settings, with_worker: bool = True) -> list[Process]:
    """Start the profile's services stage by stage (each waits for the one before to be healthy),
    create the bucket (and the databases), then register the deployments and start a worker."""
    client_env = stack_env(settings)
    env = {**os.environ, **client_env}
    stages = service_stages(settings)
    _profile_file(settings).parent.mkdir(parents=True, exist_ok=True)
    _profile_file(settings).write_text(settings.stack.stack_profile)
    prod = settings.stack.stack_profile == "prod"
    if prod:
        credentials = stack_credentials(settings)
        postgres.init_cluster(settings, credentials)
        write_mlflow_auth_config(settings)
        ensure_certificates(tls_dir(settings))
    for number, stage in enumerate(stages):
        for service in stage:
            _start(settings, service, env)
        for service in stage:
            if service.health_url:
                _wait_healthy(settings, service)
        if number == 0:
            _create_bucket(settings, env)
            if prod:
                postgres.create_databases(settings, credentials)
    if prod:
        mlflow_roles.ensure_roles(
            env["INFERLOOP_TRACKING_URI"],
            (ADMIN_USER, credentials.MLFLOW_AUTH_ADMIN_PASSWORD),
            [
                Account(
                    credentials.MLFLOW_TRACKING_USERNAME, credentials.MLFLOW_TRACKING_PASSWORD, APPROVER_ROLE
                ),
                Account(READER_USER, credentials.MLFLOW_READER_PASSWORD, READER_ROLE),
            ],
        )
        _wait_for_dask_workers(settings, env["INFERLOOP_DASK_ADDRESS"])
    if with_worker:
        deploy(settings)
        for worker in worker_processes(settings):
            _start(settings, worker, env)
    write_private_env_file(settings.state_dir / "stack" / "stack.env", client_env)
    return [service for stage in stages for service in stage]


def _wait_for_dask_workers(settings: Settings, address: str, timeout: float = 90) -> None:
    from distributed import Client

    with Client(address, timeout=30, security=client_security(settings)) as client:
        try:
            client.wait_for_workers(settings.stack.dask_workers, timeout=timeout)
        except TimeoutError as error:
            raise StackError(
                f"{settings.stack.dask_workers} Dask workers did not join {address} within {timeout:.0f} s; "
                f"see {settings.state_dir}/stack/dask-worker-*.log"
            ) from error


def stop_stack(settings: Settings, grace_seconds: float = 30) -> list[str]:
    """Stop the processes this stack started (and only those); returns their names.

    The worker goes first (so it does not log errors about vanishing servers), then the
    servers together; anything still alive after `grace_seconds` is killed.
    """
    pid_files = sorted((settings.state_dir / "stack").glob("*.pid"), key=lambda p: p.stem != "worker")
    running = {p: pid for p in pid_files if (pid := _running_pid(p))}
    stop_signals = {s.name: s.stop_signal for s in _all_services(settings)}
    for pid_file, pid in running.items():
        with suppress(ProcessLookupError):
            os.killpg(pid, stop_signals.get(pid_file.stem, signal.SIGTERM))
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


def _profile_file(settings: Settings) -> Path:
    return settings.state_dir / "stack" / "profile"


def started_profile(settings: Settings) -> Settings:
    """The settings with the profile the stack was last started with (for `down` and `status`)."""
    try:
        profile = _profile_file(settings).read_text().strip()
    except FileNotFoundError:
        return settings
    return settings.with_overrides(stack_profile=profile)


def _all_services(settings: Settings) -> list[Process]:
    return [service for stage in service_stages(started_profile(settings)) for service in stage]


def served_version(url: str, timeout: float = 5) -> str:
    """What the online endpoint at `url` scores with, from its /health/ready (no key needed)."""
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:  # 503: no model loaded yet
        body = error.read()
    except OSError:
        body = b""
    try:
        state = json.loads(body)
    except ValueError:
        state = {}
    if not state.get("version"):
        return "no model loaded yet" if "ready" in state else "what it serves is unknown"
    stale = f", stale: {state.get('problem') or 'the registry did not answer'}" if state.get("stale") else ""
    return f"serving {state.get('model_name')} v{state['version']}{stale}"


def stack_status(settings: Settings) -> dict[str, str]:
    status = {}
    for service in _all_services(settings):
        pid = _running_pid(service.pid_file(settings))
        healthy = _healthy(service.health_url) if service.health_url else bool(pid)
        up = f"up at {service.ui_url}" if service.ui_url else f"running (pid {pid})"
        if healthy and service.name == "serve":
            up = f"{up}, {served_version(service.ui_url)}"
        status[service.name] = (
            up
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
