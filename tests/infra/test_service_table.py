"""The one service table (inferloop/stack/services.py) against everything that runs it, field by
field: the processes `inferloop up` starts, infra/compose.yaml and infra/k8s/. And MLflow's auth
config, which is the same in both places: no permission unless granted. Fast: nothing starts."""

import configparser
import re
from urllib.parse import urlsplit

import pytest

from inferloop.core.settings import load_settings
from inferloop.stack import postgres
from inferloop.stack.credentials import CLIENT_CREDENTIALS, read_env_file
from inferloop.stack.dask_tls import TLS_VARIABLES
from inferloop.stack.processes import (
    mlflow_auth_config,
    service_stages,
    worker_processes,
    write_mlflow_auth_config,
)
from inferloop.stack.services import (
    ALL_INTERFACES,
    ARTIFACTS_PREFIX,
    BASIC_AUTH,
    CREDENTIAL_VARIABLES,
    SERVICES,
    WORK_POOL,
    Service,
    client_env,
    stack_env,
)
from tests.infra.infra_files import (
    CLIENT_ENV_FROM,
    COMPOSE_SERVICES,
    DEFAULTS,
    IMAGE,
    INFRA,
    K8S,
    container,
    env_file,
    k8s,
)

BUCKET = DEFAULTS["s3_bucket"]
ROWS = {row.name: row for row in SERVICES}


def default_port(row: Service) -> int:
    return DEFAULTS[row.port]


def container_addresses(name_of) -> dict[str, str]:
    """Each row with a port, at its name inside the compose network or the Kubernetes namespace."""
    return {
        row.name: f"{row.scheme}://{name_of(row)}:{default_port(row)}"
        for row in SERVICES
        if row.port and name_of(row)
    }


IN_COMPOSE = container_addresses(lambda row: row.compose)
IN_KUBERNETES = container_addresses(lambda row: row.kubernetes)


def container_argv(row: Service, addresses: dict[str, str]) -> list[str]:
    values = {
        "host": ALL_INTERFACES,
        "port": str(default_port(row)) if row.port else "",
        "scheduler": addresses["dask-scheduler"],
    }
    return [*row.program, *row.arguments("prod", container=True, **values)]


def container_env_names(row: Service) -> set[str]:
    client = (
        set(client_env(IN_COMPOSE, BUCKET)) | set(CLIENT_CREDENTIALS) | set(TLS_VARIABLES)
        if row.client
        else set()
    )
    return set(row.env_names(container=True)) | client


def accepted_by_settings(env: dict[str, str]) -> None:
    """Every INFERLOOP_* variable is a setting and its value valid."""
    load_settings(**{k.removeprefix("INFERLOOP_").lower(): v for k, v in env.items() if "INFERLOOP_" in k})


# --- compose ----------------------------------------------------------------------------------


@pytest.mark.parametrize("row", [r for r in SERVICES if r.compose], ids=lambda r: r.name)
def test_compose_runs_the_row(row):
    service = COMPOSE_SERVICES[row.compose]
    if row.image == "inferloop":
        assert service["image"] == IMAGE
        assert service["command"] == container_argv(row, IN_COMPOSE)
        env = service.get("environment", {})
        assert set(env) == container_env_names(row)
        assert all(re.search(r"\$\{\w+:\?", env[name]) for name in env.keys() & CREDENTIAL_VARIABLES)
    else:  # PostgreSQL's and MinIO's own images, pinned; `inferloop up` runs a stand-in
        assert re.fullmatch(rf"{re.escape(row.image)}:[\w.-]+", service["image"])
    if row.port and row.published:
        host = f"${{INFERLOOP_STACK_HOST:-{DEFAULTS['stack_host']}}}"
        port = default_port(row)
        assert f"{host}:${{INFERLOOP_{row.port.upper()}:-{port}}}:{port}" in service["ports"]
    elif row.port:  # inside the network only
        assert service["expose"] == [str(default_port(row))]
        assert not any(m.endswith(f":{default_port(row)}") for m in service.get("ports", []))
    if row.health.startswith("/") and row.image == "inferloop":
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{default_port(row)}{row.health}'" in probe
    if row.replicas:
        assert service["deploy"]["replicas"] == DEFAULTS[row.replicas]
    # Started after the rows it waits for, as `inferloop up` starts stage by stage.
    stages = {r.compose: r.stage for r in SERVICES if r.compose}
    assert all(stages[name] < row.stage for name in service.get("depends_on", {}) if name in stages)


def test_compose_reaches_each_part_by_service_name():
    expected = client_env(IN_COMPOSE, BUCKET)
    for name in ("prefect-deploy", *(r.compose for r in SERVICES if r.client)):
        env = COMPOSE_SERVICES[name]["environment"]
        assert {k: env[k] for k in expected} == expected, name
        assert all(env[k].startswith(f"${{{k}:?") for k in CLIENT_CREDENTIALS), name
        accepted_by_settings(env)
    mlflow = COMPOSE_SERVICES[ROWS["mlflow"].compose]["environment"]
    assert mlflow["MLFLOW_ARTIFACTS_DESTINATION"] == f"s3://{BUCKET}/{ARTIFACTS_PREFIX}"
    assert mlflow["MLFLOW_S3_ENDPOINT_URL"] == IN_COMPOSE["s3"]
    assert f"{ROWS['mlflow'].compose}:{default_port(ROWS['mlflow'])}" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"]
    database = urlsplit(IN_COMPOSE["postgres"]).netloc
    prefect = COMPOSE_SERVICES[ROWS["prefect"].compose]["environment"]
    urls = {
        "prefect": prefect["PREFECT_API_DATABASE_CONNECTION_URL"],
        "mlflow": mlflow["MLFLOW_BACKEND_STORE_URI"],
    }
    for name, url in urls.items():
        assert url.rsplit("@", 1)[1] == f"{database}/{name}"
    minio_init = COMPOSE_SERVICES["minio-init"]["entrypoint"][2]
    assert f"mc mb --ignore-existing local/{BUCKET}" in minio_init
    assert f"mc alias set local {IN_COMPOSE['s3']} " in minio_init


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("row", [r for r in SERVICES if r.kubernetes], ids=lambda r: r.name)
def test_kubernetes_runs_the_row(row):
    spec = k8s("Deployment", row.kubernetes)["spec"]
    runs = container(row.kubernetes)
    assert runs["image"] == IMAGE
    assert runs["args"] == container_argv(row, IN_KUBERNETES)
    env = {entry["name"]: entry for entry in runs.get("env", [])}
    assert set(env) == set(row.env_names(container=True))
    assert (runs.get("envFrom") == CLIENT_ENV_FROM) is row.client
    assert all("secretKeyRef" in env[name]["valueFrom"] for name in env.keys() & CREDENTIAL_VARIABLES)
    ports = {p["name"]: p["containerPort"] for p in runs.get("ports", [])}
    if row.port:
        service_ports = {p["port"]: p["targetPort"] for p in k8s("Service", row.kubernetes)["spec"]["ports"]}
        assert ports[service_ports[default_port(row)]] == default_port(row)
    if row.health.startswith("/"):
        probe = runs["readinessProbe"]["httpGet"]
        assert (probe["path"], ports[probe["port"]]) == (row.ready or row.health, default_port(row))
    if row.replicas:
        assert spec["replicas"] == DEFAULTS[row.replicas]


def test_kubernetes_reaches_each_part_by_service_name():
    config = env_file(K8S / "config.env")
    # S3 is the cloud's there: AWS needs no endpoint (config.env says how to set one).
    expected = client_env({**IN_KUBERNETES, "s3": ""}, BUCKET)
    del expected["INFERLOOP_S3_ENDPOINT_URL"]
    assert {k: config[k] for k in expected} == expected
    accepted_by_settings(config)
    assert set(env_file(K8S / "credentials.env.example")) == set(CLIENT_CREDENTIALS)
    assert config["MLFLOW_ARTIFACTS_DESTINATION"] == f"s3://{BUCKET}/{ARTIFACTS_PREFIX}"
    allowed = container(ROWS["mlflow"].kubernetes)["env"]
    hosts = next(e["value"] for e in allowed if e["name"] == "MLFLOW_SERVER_ALLOWED_HOSTS")
    assert f"{ROWS['mlflow'].kubernetes}:{default_port(ROWS['mlflow'])}" in hosts


# --- inferloop up -----------------------------------------------------------------------------


@pytest.fixture
def prod_settings(tmp_path, monkeypatch):
    """The prod profile on this machine's defaults, with generated credentials; a stand-in for
    Debian's PostgreSQL binaries so that this runs where the package is not installed."""
    for name in (
        *CLIENT_CREDENTIALS,
        "PGPASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "debian" / "16" / "bin").mkdir(parents=True)
    (tmp_path / "debian" / "16" / "bin" / "postgres").touch()
    monkeypatch.setattr(postgres, "DEBIAN_SERVER_DIRS", tmp_path / "debian")
    return load_settings(stack_profile="prod", state_dir=tmp_path / "state", stack_host="127.0.0.2")


def row_of(process_name: str) -> Service:
    return ROWS.get(process_name) or ROWS[process_name.rsplit("-", 1)[0]]


def test_inferloop_up_runs_every_prod_row_on_the_stack_interface(prod_settings):
    stages = service_stages(prod_settings)
    processes = [p for stage in stages for p in stage]
    (worker,) = worker_processes(prod_settings)
    workers = DEFAULTS["dask_workers"]
    assert {p.name for p in processes} == {
        *(r.name for r in SERVICES if not r.replicas and not r.runs_deployments),
        *(f"dask-worker-{n}" for n in range(1, workers + 1)),
    }
    assert [sorted({row_of(p.name).stage for p in stage}) for stage in stages] == [[0], [1], [2]]
    credentials = read_env_file(prod_settings.state_dir / "stack" / "credentials.env")
    for process in [*processes, worker]:
        row = row_of(process.name)
        assert process.command[0].endswith(f"/{row.program[0]}")
        assert process.command[1 : len(row.program)] == list(row.program[1:])
        # Every variable the row names has its value; credentials are the generated ones.
        assert set(process.env) == set(row.env_names(container=False)), process.name
        assert all(process.env.values())
        for name in process.env.keys() & credentials.keys():
            assert process.env[name] == credentials[name]
        if row.port:
            port = str(row.port_number(prod_settings))
            assert {"127.0.0.2", port} <= set(process.command), process.name
            assert urlsplit(process.ui_url).netloc == f"127.0.0.2:{port}"
            assert process.health_url.startswith("tcp://" if row.health == "tcp" else process.ui_url)
    assert worker.command[worker.command.index("--pool") + 1] == WORK_POOL
    # MLflow's admin is not the loop's account, and no client holds its password.
    mlflow = next(p for p in processes if p.name == "mlflow")
    client = stack_env(prod_settings)
    assert mlflow.env["MLFLOW_AUTH_ADMIN_USERNAME"] != client["MLFLOW_TRACKING_USERNAME"]
    assert mlflow.env["MLFLOW_AUTH_ADMIN_PASSWORD"] not in client.values()
    # The scheduler and every client (the Dask workers among them) speak TLS with the same files.
    assert urlsplit(client["INFERLOOP_DASK_ADDRESS"]).scheme == "tls"
    scheduler = next(p for p in processes if p.name == "dask-scheduler")
    assert {k: client[k] for k in TLS_VARIABLES} == scheduler.env


def test_inferloop_up_local_profile_runs_no_auth_and_no_credentials(tmp_path):
    settings = load_settings(stack_profile="local", state_dir=tmp_path / "state")
    processes = {p.name: p for stage in service_stages(settings) for p in stage}
    assert set(processes) == {r.name for r in SERVICES if "local" in r.profiles and not r.runs_deployments}
    assert "basic-auth" not in processes["mlflow"].command
    assert processes["mlflow"].env == {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{settings.state_dir / 'mlflow.db'}",
        "MLFLOW_ARTIFACTS_DESTINATION": str(settings.state_dir / "mlartifacts"),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    assert not any(p.env for name, p in processes.items() if name != "mlflow")
    assert not (settings.state_dir / "stack" / "credentials.env").exists()


# --- MLflow's auth config ---------------------------------------------------------------------


def test_mlflow_grants_no_permission_unless_granted_in_both_places(prod_settings, monkeypatch):
    from mlflow.server.auth.config import read_auth_config
    from mlflow.server.auth.permissions import get_permission

    assert not get_permission(BASIC_AUTH["default_permission"]).can_read
    write_mlflow_auth_config(prod_settings)
    committed = INFRA / "mlflow" / "basic_auth.ini"
    for path in (mlflow_auth_config(prod_settings), committed):
        monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
        read = read_auth_config()  # as the pinned MLflow reads it
        assert read.default_permission == "NO_PERMISSIONS", path
        assert read.authorization_function == BASIC_AUTH["authorization_function"], path
        assert read.grant_default_workspace_access is False, path
        assert read.auth_cache_ttl_seconds == 60, path
        config = configparser.ConfigParser()
        config.read(path)
        assert {k: v for k, v in config["mlflow"].items() if k != "database_uri"} == BASIC_AUTH, path
    # The containers' user store is on the volume mounted where basic_auth.ini says.
    store = read_auth_config().database_uri.removeprefix("sqlite:///")
    mounts = [v.split(":")[1] for v in COMPOSE_SERVICES[ROWS["mlflow"].compose]["volumes"]]
    mounts += [m["mountPath"] for m in container(ROWS["mlflow"].kubernetes)["volumeMounts"]]
    assert mounts and all(store.startswith(f"{mount}/") for mount in mounts)
