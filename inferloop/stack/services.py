"""The stack's one service table, and the environment that points a client at the stack.

`SERVICES` names each part of the stack once: its program and options, port, health check, the
variables it reads (and which of them are credentials), whether it is a client of the stack, and
its start stage. What runs it:
- `inferloop up`: the rows of a profile, as processes on loopback (`processes.py` resolves them,
  `control.py` starts them). local: the S3 API (moto), Prefect, MLflow (SQLite, local artifacts)
  and a worker, no auth. prod: every row: PostgreSQL, the S3 API, Prefect and MLflow with auth,
  a Dask cluster.
- infra/compose.yaml and infra/k8s/: the prod rows in containers. Those files are written for
  their readers and checked against this table field by field (tests/infra/test_service_table.py).

Options are templates: {host} is the stack's interface locally and all interfaces in a container,
{port} the row's Settings field locally and that field's default in a container, {scheduler} the
Dask scheduler's address, {data_dir} PostgreSQL's cluster, {n} the copy's number (from 1).
"""

import signal
from dataclasses import dataclass

from inferloop.core.settings import REPO_ROOT, Settings
from inferloop.stack.credentials import stack_credentials
from inferloop.stack.dask_tls import TLS_VARIABLES, tls_dir, tls_env

WORK_POOL = "inferloop-process"
AWS_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "inferloop-local", "AWS_SECRET_ACCESS_KEY": "inferloop-local"}
PROD = ("prod",)
ALL_INTERFACES = "0.0.0.0"  # in a container: its network namespace is the boundary


@dataclass(frozen=True)
class Service:
    """One row of the table: a part of the stack, as every deployment of it runs it."""

    name: str  # `inferloop up`'s process (PID file, log); compose and Kubernetes names below
    program: tuple[str, ...]  # executable and subcommand
    options: tuple[str, ...] = ()  # every deployment's (templates, see the module docstring)
    prod_options: tuple[str, ...] = ()  # the prod profile's and the containers'
    local_options: tuple[str, ...] = ()  # `inferloop up`'s only
    container_options: tuple[str, ...] = ()  # compose's and Kubernetes' only
    port: str | None = None  # its Settings field; a container listens on the field's default
    scheme: str = "http"  # of its address: scheme://host:port
    published: bool = False  # reached from outside the stack (compose publishes it on the host)
    health: str = ""  # HTTP path answered without credentials; "tcp": the port accepts; "": none
    ready: str = ""  # HTTP path that says it takes traffic (Kubernetes' readiness), if not `health`
    env: tuple[str, ...] = ()  # variables it reads (prod profile and containers)
    local_env: tuple[str, ...] = ()  # ... set by `inferloop up` only
    container_env: tuple[str, ...] = ()  # ... set by compose and Kubernetes only
    # Also gets the client environment: addresses, client credentials and (prod) the Dask TLS files.
    client: bool = False
    stage: int = 0  # `inferloop up` starts stage by stage, each healthy before the next starts
    profiles: tuple[str, ...] = ("local", "prod")
    runs_deployments: bool = False  # a Prefect worker: starts after `prefect deploy`
    replicas: str | None = None  # Settings field with its number of copies
    stop_signal: int = signal.SIGTERM
    image: str = "inferloop"  # in compose; another image: `inferloop up` runs a stand-in program
    compose: str | None = None  # its service in infra/compose.yaml
    kubernetes: str | None = None  # its Deployment (and Service) in infra/k8s; None: managed there

    def arguments(self, profile: str, container: bool, **values: str) -> list[str]:
        """Its options for this profile and place, templates filled in from `values`."""
        options = [
            *self.options,
            *(self.prod_options if profile == "prod" else ()),
            *(self.container_options if container else self.local_options),
        ]
        return [option.format(**values) for option in options]

    def env_names(self, container: bool) -> tuple[str, ...]:
        return (*self.env, *(self.container_env if container else self.local_env))

    def port_number(self, settings: Settings) -> int | None:
        """Its port on this machine: its Settings field (a stack or a serving setting)."""
        if not self.port:
            return None
        group = settings.stack if hasattr(settings.stack, self.port) else settings.serving
        return getattr(group, self.port)


SERVICES: tuple[Service, ...] = (
    Service(
        "postgres",
        ("postgres",),  # Debian's server locally (as `postgres` when we are root: it refuses root)
        ("-D", "{data_dir}", "-h", "{host}", "-p", "{port}", "-k", ""),  # TCP only, no Unix socket
        port="postgres_port",
        scheme="postgresql",
        health="tcp",
        profiles=PROD,
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for every client to leave
        image="postgres",  # Kubernetes: a managed database
        compose="postgres",
    ),
    Service(
        "s3",
        # Locally moto's server (s3_api.py; prod: signed requests only); MinIO in compose, with its
        # own command (private unless a policy says otherwise); the cloud's S3 in Kubernetes.
        ("python", "-m", "inferloop.stack.s3_api"),
        ("-H", "{host}", "-p", "{port}"),
        prod_options=("--signed-only",),
        port="s3_port",
        published=True,
        health="/moto-api/",
        image="minio/minio",
        compose="minio",
    ),
    Service(
        "prefect",
        ("prefect", "server", "start"),
        ("--host", "{host}", "--port", "{port}"),
        port="prefect_port",
        published=True,
        health="/api/health",
        env=("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_API_AUTH_STRING"),
        local_env=("PGPASSWORD",),  # local database URLs carry no password: asyncpg reads this
        container_env=("PREFECT_SERVER_UI_API_URL",),  # the API as a browser reaches it
        stage=1,
        compose="prefect-server",
        kubernetes="prefect-server",
    ),
    Service(
        "mlflow",
        ("mlflow", "server"),
        ("--host", "{host}", "--port", "{port}"),
        prod_options=("--app-name", "basic-auth"),
        local_options=("--workers", "1"),
        container_options=("--workers", "2"),
        port="mlflow_port",
        published=True,
        health="/health",
        env=(
            "MLFLOW_BACKEND_STORE_URI",
            "MLFLOW_ARTIFACTS_DESTINATION",
            "MLFLOW_AUTH_ADMIN_USERNAME",
            "MLFLOW_AUTH_ADMIN_PASSWORD",
            "MLFLOW_FLASK_SERVER_SECRET_KEY",
            # Artifacts are proxied: only the server talks to S3 for them.
            "MLFLOW_S3_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ),
        # In a container: the image's ENV.
        local_env=("PGPASSWORD", "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"),
        container_env=("MLFLOW_SERVER_ALLOWED_HOSTS",),  # Host headers besides loopback
        stage=1,
        compose="mlflow",
        kubernetes="mlflow",
    ),
    Service(
        "dask-scheduler",
        ("dask", "scheduler"),
        ("--host", "{host}", "--port", "{port}"),
        local_options=("--no-dashboard",),
        container_options=("--dashboard-address", ":8787"),  # its /health is the containers' probe
        port="dask_scheduler_port",
        scheme="tls",  # mutual TLS: only a holder of the cluster's key connects (dask_tls.py)
        health="tcp",
        env=TLS_VARIABLES,
        stage=1,
        profiles=PROD,
        compose="dask-scheduler",
        kubernetes="dask-scheduler",
    ),
    Service(
        "dask-worker",
        ("dask", "worker"),
        ("{scheduler}", "--nthreads", "1", "--no-dashboard"),
        local_options=("--host", "{host}", "--name", "inferloop-{n}"),
        env=("OMP_NUM_THREADS",),  # one thread per worker for the model too: workers x cores, not x^2
        client=True,  # tasks read the lake and the registry from the workers (TLS: a Dask client too)
        stage=2,
        profiles=PROD,
        replicas="dask_workers",
        compose="dask-worker",
        kubernetes="dask-worker",
    ),
    Service(
        "serve",
        ("inferloop", "serve"),
        ("--host", "{host}", "--port", "{port}"),
        port="serve_port",
        published=True,
        health="/health/live",  # up before a champion exists; ready once one is loaded
        ready="/health/ready",
        # Its API keys (hashed): `inferloop up` makes one in the state dir; containers mount a Secret.
        container_env=("INFERLOOP_SERVE_KEYS_FILE",),
        client=True,  # follows @champion in MLflow, writes online rows to the lake
        stage=2,
        compose="inferloop-serve",
        kubernetes="inferloop-serve",
    ),
    Service(
        "worker",
        ("prefect", "worker", "start"),
        ("--pool", WORK_POOL, "--type", "process", "--install-policy", "never"),
        client=True,
        stage=3,
        runs_deployments=True,
        compose="prefect-worker",  # Kubernetes runs a worker of its own pool (prefect-worker.yaml)
    ),
)

# Variables that hold a credential (or, in a container, a URL with one in it): `inferloop up`
# takes them from credentials.env (0600), compose from infra/.env (${VAR:?}), Kubernetes from a Secret.
CREDENTIAL_VARIABLES = frozenset(
    {
        "PGPASSWORD",
        "PREFECT_API_DATABASE_CONNECTION_URL",
        "PREFECT_SERVER_API_AUTH_STRING",
        "PREFECT_API_AUTH_STRING",
        "MLFLOW_BACKEND_STORE_URI",
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
)

# MLflow's basic-auth app: nobody may read or write anything unless granted (the admin may all,
# and an account owns what it creates). infra/mlflow/basic_auth.ini holds the same keys; only
# where the user store lives (`database_uri`) differs.
BASIC_AUTH = {
    "default_permission": "NO_PERMISSIONS",
    "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    "grant_default_workspace_access": "false",
    # Each request otherwise re-checks the password's scrypt hash (0.16 s on an idle core; the
    # production test's MLflow answered about one request a second). Cached for 60 s per process:
    # a password change or a deleted account elsewhere takes up to that long to apply.
    "auth_cache_ttl_seconds": "60",
}
ARTIFACTS_PREFIX = "mlartifacts"  # where in the bucket MLflow's server keeps artifacts
# MLflow's clients move artifacts through its server. Left to itself, a client asks the server for
# presigned S3 URLs and uses them directly; the local S3 stand-in (s3_api.py) checks header
# signatures only, so `inferloop up` keeps every transfer on the proxy.
PROXIED_ARTIFACTS_ONLY = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
}
LAKE_PREFIX = "lake"  # where in the bucket the prod profile keeps the lake


def client_env(addresses: dict[str, str], bucket: str) -> dict[str, str]:
    """Where a client of the prod stack (CLI, worker, flow runs, Dask workers) finds its parts,
    given each row's address; the CLIENT_CREDENTIALS go with it."""
    return {
        "PREFECT_API_URL": f"{addresses['prefect']}/api",
        "INFERLOOP_TRACKING_URI": addresses["mlflow"],
        "INFERLOOP_STORAGE_URI": f"s3://{bucket}/{LAKE_PREFIX}",
        "INFERLOOP_S3_ENDPOINT_URL": addresses["s3"],
        "INFERLOOP_TASK_RUNNER": "dask",
        "INFERLOOP_DASK_ADDRESS": addresses["dask-scheduler"],
    }


def addresses(settings: Settings) -> dict[str, str]:
    """Each row with a port at its address on this machine."""
    return {
        row.name: f"{row.scheme}://{settings.stack.stack_host}:{row.port_number(settings)}"
        for row in SERVICES
        if row.port
    }


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment that points a client (CLI, worker, flow runs) at the running stack."""
    urls = addresses(settings)
    machine = {
        "INFERLOOP_STATE_DIR": str(settings.state_dir),
        "INFERLOOP_PROJECT_DIR": str(REPO_ROOT),
        "INFERLOOP_STACK_PROFILE": settings.stack.stack_profile,
    }
    if settings.stack.stack_profile == "local":
        return {
            "PREFECT_API_URL": f"{urls['prefect']}/api",
            "INFERLOOP_TRACKING_URI": urls["mlflow"],
            "INFERLOOP_S3_ENDPOINT_URL": urls["s3"],
            **machine,
            **AWS_DUMMY_CREDENTIALS,
        }
    return {
        **client_env(urls, settings.stack.s3_bucket),
        **machine,
        **stack_credentials(settings).client_env(),
        **tls_env(tls_dir(settings)),
        **PROXIED_ARTIFACTS_ONLY,
    }
