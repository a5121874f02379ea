"""The service table's rows as the processes `inferloop up` runs on this machine (control.py
starts and stops them): commands, health URLs and each process's own variables."""

import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from inferloop.core.settings import Settings
from inferloop.stack import postgres
from inferloop.stack.credentials import StackCredentials, stack_credentials
from inferloop.stack.dask_tls import tls_dir, tls_env
from inferloop.stack.mlflow_roles import ADMIN_USER
from inferloop.stack.services import ARTIFACTS_PREFIX, BASIC_AUTH, SERVICES, Service, addresses


@dataclass(frozen=True)
class Process:
    """A row as `inferloop up` runs it: one background process on this machine."""

    name: str
    command: list[str]
    health_url: str  # http(s)://... answers < 500, tcp://host:port accepts, "" = none
    ui_url: str
    env: dict[str, str] = field(default_factory=dict)  # on top of the client environment
    user: str | None = None  # run as this system user (PostgreSQL refuses root)
    stop_signal: int = signal.SIGTERM

    def pid_file(self, settings: Settings) -> Path:
        return settings.state_dir / "stack" / f"{self.name}.pid"

    def log_file(self, settings: Settings) -> Path:
        return settings.state_dir / "stack" / f"{self.name}.log"


def executable(name: str) -> str:
    """An executable of this environment (the venv's bin dir), found without relying on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def mlflow_auth_config(settings: Settings) -> Path:
    return settings.state_dir / "stack" / "mlflow-auth.ini"


def write_mlflow_auth_config(settings: Settings) -> None:
    """BASIC_AUTH, with the users in PostgreSQL. It holds no secret: the admin's name and
    password come from MLFLOW_AUTH_ADMIN_*."""
    path = mlflow_auth_config(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {**BASIC_AUTH, "database_uri": postgres.database_url(settings, "mlflow_auth")}
    path.write_text("[mlflow]\n" + "".join(f"{key} = {value}\n" for key, value in values.items()))


def _variables(settings: Settings, credentials: StackCredentials | None) -> dict[str, str]:
    """The value `inferloop up` gives each variable the table names. The local profile sets only
    MLflow's stores (SQLite, local artifacts): no database, no auth, no S3 for MLflow."""
    # MLflow's job runner (8 more processes) serves features inferloop does not use; off, the
    # server is healthy in less than half the time.
    jobs_off = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if credentials is None:
        return {
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{settings.state_dir / 'mlflow.db'}",
            "MLFLOW_ARTIFACTS_DESTINATION": str(settings.registry.mlflow_artifact_root),
            **jobs_off,
        }
    return {
        **jobs_off,
        "PGPASSWORD": credentials.PGPASSWORD,
        "PREFECT_API_DATABASE_CONNECTION_URL": postgres.database_url(
            settings, "prefect", "postgresql+asyncpg"
        ),
        "PREFECT_SERVER_API_AUTH_STRING": credentials.PREFECT_API_AUTH_STRING,
        "MLFLOW_BACKEND_STORE_URI": postgres.database_url(settings, "mlflow"),
        "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{settings.stack.s3_bucket}/{ARTIFACTS_PREFIX}",
        "MLFLOW_AUTH_CONFIG_PATH": str(mlflow_auth_config(settings)),
        # MLflow's admin is not the loop's account: `inferloop up` alone uses it (mlflow_roles.py).
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_USER,
        "MLFLOW_AUTH_ADMIN_PASSWORD": credentials.MLFLOW_AUTH_ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.MLFLOW_FLASK_SERVER_SECRET_KEY,
        "MLFLOW_S3_ENDPOINT_URL": addresses(settings)["s3"],
        "AWS_ACCESS_KEY_ID": credentials.AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": credentials.AWS_SECRET_ACCESS_KEY,
        "OMP_NUM_THREADS": "1",
        **tls_env(tls_dir(settings)),
    }


def _processes(row: Service, settings: Settings, variables: dict[str, str]) -> list[Process]:
    address = addresses(settings).get(row.name, "")
    if row.health == "tcp":
        health_url = f"tcp://{settings.stack.stack_host}:{row.port_number(settings)}"
    else:
        health_url = f"{address}{row.health}" if row.health else ""
    if row.name == "postgres":
        program, user = [str(postgres.server_bin_dir() / "postgres")], postgres.run_as()
    else:
        program, user = [executable(row.program[0]), *row.program[1:]], None
    env = {name: variables[name] for name in row.env_names(container=False) if name in variables}
    values = {
        "host": settings.stack.stack_host,
        "port": str(row.port_number(settings)) if row.port else "",
        "scheduler": addresses(settings)["dask-scheduler"],
        "data_dir": str(postgres.data_dir(settings)),
    }
    copies = getattr(settings.stack, row.replicas) if row.replicas else None
    return [
        Process(
            name=f"{row.name}-{n}" if copies else row.name,
            command=[
                *program,
                *row.arguments(settings.stack.stack_profile, container=False, n=str(n), **values),
            ],
            health_url=health_url,
            ui_url=address,
            env=env,
            user=user,
            stop_signal=row.stop_signal,
        )
        for n in range(1, (copies or 1) + 1)
    ]


def _rows(settings: Settings, runs_deployments: bool) -> list[Service]:
    return [
        row
        for row in SERVICES
        if settings.stack.stack_profile in row.profiles and row.runs_deployments == runs_deployments
    ]


def service_stages(settings: Settings) -> list[list[Process]]:
    """The profile's servers and Dask workers as processes, stage by stage (the Prefect worker
    apart: it starts once the deployments are registered)."""
    credentials = stack_credentials(settings) if settings.stack.stack_profile == "prod" else None
    variables = _variables(settings, credentials)
    rows = _rows(settings, runs_deployments=False)
    return [
        [process for row in rows if row.stage == stage for process in _processes(row, settings, variables)]
        for stage in sorted({row.stage for row in rows})
    ]


def worker_processes(settings: Settings) -> list[Process]:
    """The Prefect worker(s) that run the deployments."""
    return [
        process for row in _rows(settings, runs_deployments=True) for process in _processes(row, settings, {})
    ]
