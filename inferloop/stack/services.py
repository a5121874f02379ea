"""What each stack profile runs, on loopback, and the environment that points clients at it.

local: Prefect server (SQLite), MLflow server (SQLite, local artifacts), S3 API (moto), worker.
prod:  the same code on production-grade parts: PostgreSQL for Prefect and MLflow, MLflow artifacts
       and the lake on the S3 API, a Dask cluster (`dask scheduler` + workers) for batch inference,
       and authentication on both APIs (Prefect API auth string, MLflow basic auth).
"""

import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from inferloop.core.settings import REPO_ROOT, Settings
from inferloop.stack import postgres
from inferloop.stack.credentials import stack_credentials

WORK_POOL = "inferloop-process"
AWS_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "inferloop-local", "AWS_SECRET_ACCESS_KEY": "inferloop-local"}


@dataclass(frozen=True)
class Service:
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


def _urls(settings: Settings) -> dict[str, str]:
    host = settings.stack_host
    return {
        "prefect": f"http://{host}:{settings.prefect_port}",
        "mlflow": f"http://{host}:{settings.mlflow_port}",
        "s3": f"http://{host}:{settings.s3_port}",
        "dask": f"tcp://{host}:{settings.dask_scheduler_port}",
    }


def _prefect_server(settings: Settings, env: dict[str, str] | None = None) -> Service:
    url = _urls(settings)["prefect"]
    command = ["server", "start", "--host", settings.stack_host, "--port", str(settings.prefect_port)]
    return Service("prefect", [executable("prefect"), *command], f"{url}/api/health", url, env or {})


def _mlflow_server(settings: Settings, stores: list[str], env: dict[str, str] | None = None) -> Service:
    url = _urls(settings)["mlflow"]
    command = [executable("mlflow"), "server", *stores, "--host", settings.stack_host]
    command += ["--port", str(settings.mlflow_port), "--workers", "1"]
    return Service("mlflow", command, f"{url}/health", url, env or {})


def _s3_server(settings: Settings) -> Service:
    url = _urls(settings)["s3"]
    command = [executable("moto_server"), "-H", settings.stack_host, "-p", str(settings.s3_port)]
    return Service("s3", command, f"{url}/moto-api/", url)


def local_stages(settings: Settings) -> list[list[Service]]:
    # Same SQLite store and artifact root as the embedded mode: runs of `make demo` show up.
    stores = [
        *("--backend-store-uri", f"sqlite:///{settings.state_dir / 'mlflow.db'}"),
        *("--artifacts-destination", str(settings.mlflow_artifact_root)),
    ]
    return [[_prefect_server(settings), _mlflow_server(settings, stores), _s3_server(settings)]]


def mlflow_auth_config(settings: Settings) -> Path:
    return settings.state_dir / "stack" / "mlflow-auth.ini"


def write_mlflow_auth_config(settings: Settings) -> None:
    """MLflow's basic-auth config: users in PostgreSQL, nobody but the admin may read or write.
    It holds no secret: the admin's name and password come from MLFLOW_AUTH_ADMIN_*."""
    path = mlflow_auth_config(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {postgres.database_url(settings, 'mlflow_auth')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )


def prod_stages(settings: Settings) -> list[list[Service]]:
    """Databases and object store first; then the servers that use them; then Dask workers."""
    credentials = stack_credentials(settings)
    urls = _urls(settings)
    database = Service(
        "postgres",
        postgres.server_command(settings),
        f"tcp://{settings.stack_host}:{settings.postgres_port}",
        f"postgresql://{settings.stack_host}:{settings.postgres_port}",
        user=postgres.run_as(),
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for every client to leave
    )
    prefect_env = {
        "PREFECT_API_DATABASE_CONNECTION_URL": postgres.database_url(
            settings, "prefect", "postgresql+asyncpg"
        ),
        "PREFECT_SERVER_API_AUTH_STRING": credentials.PREFECT_API_AUTH_STRING,
        "PGPASSWORD": credentials.PGPASSWORD,
    }
    mlflow_stores = [
        *("--backend-store-uri", postgres.database_url(settings, "mlflow")),
        *("--artifacts-destination", f"s3://{settings.s3_bucket}/mlartifacts"),
        *("--app-name", "basic-auth"),
    ]
    mlflow_env = {
        "PGPASSWORD": credentials.PGPASSWORD,
        "MLFLOW_AUTH_CONFIG_PATH": str(mlflow_auth_config(settings)),
        "MLFLOW_AUTH_ADMIN_USERNAME": credentials.MLFLOW_TRACKING_USERNAME,
        "MLFLOW_AUTH_ADMIN_PASSWORD": credentials.MLFLOW_TRACKING_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.MLFLOW_FLASK_SERVER_SECRET_KEY,
        "MLFLOW_S3_ENDPOINT_URL": urls["s3"],
    }
    scheduler = Service(
        "dask-scheduler",
        [
            *(executable("dask"), "scheduler", "--host", settings.stack_host),
            *("--port", str(settings.dask_scheduler_port), "--no-dashboard"),
        ],
        urls["dask"],
        urls["dask"],
    )
    # One thread per worker, and one OpenMP thread for the model in it: workers x cores, not x^2.
    workers = [
        Service(
            f"dask-worker-{n}",
            [
                *(executable("dask"), "worker", urls["dask"], "--host", settings.stack_host),
                *("--nthreads", "1", "--no-dashboard", "--name", f"inferloop-{n}"),
            ],
            "",
            "",
            env={"OMP_NUM_THREADS": "1"},
        )
        for n in range(1, settings.dask_workers + 1)
    ]
    return [
        [database, _s3_server(settings)],
        [
            _prefect_server(settings, prefect_env),
            _mlflow_server(settings, mlflow_stores, mlflow_env),
            scheduler,
        ],
        workers,
    ]


def service_stages(settings: Settings) -> list[list[Service]]:
    return prod_stages(settings) if settings.stack_profile == "prod" else local_stages(settings)


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment that points a client (CLI, worker, flow runs) at the running stack."""
    urls = _urls(settings)
    env = {
        "PREFECT_API_URL": f"{urls['prefect']}/api",
        "INFERLOOP_TRACKING_URI": urls["mlflow"],
        "INFERLOOP_STATE_DIR": str(settings.state_dir),
        "INFERLOOP_S3_ENDPOINT_URL": urls["s3"],
        "INFERLOOP_PROJECT_DIR": str(REPO_ROOT),
        "INFERLOOP_STACK_PROFILE": settings.stack_profile,
    }
    if settings.stack_profile == "local":
        return {**env, **AWS_DUMMY_CREDENTIALS}
    return {
        **env,
        "INFERLOOP_STORAGE_URI": f"s3://{settings.s3_bucket}/lake",
        "INFERLOOP_TASK_RUNNER": "dask",
        "INFERLOOP_DASK_ADDRESS": urls["dask"],
        **stack_credentials(settings).client_env(),
    }
