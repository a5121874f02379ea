"""The production profile: the same loop on PostgreSQL, the S3 API, a Dask cluster and
authenticated APIs, started by `inferloop up --profile prod` as separate processes on loopback.
After the loop, no credential may appear in a log, artifact, param, tag, object or command line."""

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from inferloop.stack.credentials import read_env_file
from inferloop.stack.mlflow_roles import ADMIN_USER, READER_USER
from inferloop.stack.postgres import PostgresError, server_bin_dir
from tests.conftest import free_port
from tests.e2e.conftest import BIN, STACK_TEST_ENV, api, wait_for_run
from tests.serving.conftest import feed_records

pytestmark = pytest.mark.slow

MODEL = "transactions-classifier"
LISTENING = "0A"  # TCP state in /proc/net/tcp
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, IPv4 and IPv4-mapped


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    """`inferloop up --profile prod` on spare ports; yields the client environment and ports."""
    try:
        server_bin_dir()
    except PostgresError as error:
        pytest.skip(str(error))
    # PostgreSQL runs as `postgres` when we are root: its directory must be reachable by it,
    # which pytest's private (0700) temporary root is not.
    root = Path(tempfile.mkdtemp(prefix="inferloop-prod-"))
    root.chmod(0o755)
    ports = {name: free_port() for name in ("PREFECT", "MLFLOW", "S3", "POSTGRES", "DASK_SCHEDULER", "SERVE")}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INFERLOOP_", "PREFECT_", "MLFLOW_", "AWS_", "PG"))
    }
    env.update({f"INFERLOOP_{name}_PORT": str(port) for name, port in ports.items()})
    env["INFERLOOP_STATE_DIR"] = str(root / "state")
    env.update(STACK_TEST_ENV)

    def cli(*args: str, client: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "inferloop"), *args],
            env={**env, **(client or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    up = cli("up", "--profile", "prod")
    stack_dir = root / "state" / "stack"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        client = {**env, **read_env_file(stack_dir / "stack.env")}
        yield {
            "cli": lambda *args: cli(*args, client=client),
            "client": client,
            "credentials": read_env_file(stack_dir / "credentials.env"),
            "ports": ports,
            "stack_dir": stack_dir,
            "up": up,
        }
    finally:
        for log in sorted(stack_dir.glob("*.log")):
            print(f"--- {log.name} (last 30 lines)", *log.read_text().splitlines()[-30:], sep="\n")
        cli("down")
        shutil.rmtree(root, ignore_errors=True)  # outside pytest's temporary root: nothing else removes it


def _http_status(
    url: str, auth: str | None = None, payload: dict | None = None, method: str | None = None
) -> int:
    try:
        api(url, payload, attempts=1, auth=auth, method=method)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


def _scoring_status(url: str, key: str | None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    body = json.dumps({"dataframe_records": feed_records(1)}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _listening_addresses(ports: set[int]) -> dict[int, str]:
    """Local address of each listening TCP socket on `ports` (IPv4 and IPv6), from /proc."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == LISTENING and int(port, 16) in ports:
                found[int(port, 16)] = "127.0.0.1" if address in LOOPBACK else address
    return found


def test_apis_refuse_unauthenticated_requests_and_bind_to_loopback(prod):
    prefect = f"http://127.0.0.1:{prod['ports']['PREFECT']}/api"
    mlflow = f"http://127.0.0.1:{prod['ports']['MLFLOW']}/api/2.0/mlflow/experiments/search?max_results=1"
    credentials = prod["credentials"]
    prefect_auth = credentials["PREFECT_API_AUTH_STRING"]
    mlflow_auth = f"{credentials['MLFLOW_TRACKING_USERNAME']}:{credentials['MLFLOW_TRACKING_PASSWORD']}"

    assert _http_status(f"{prefect}/flows/filter", payload={}) == 401
    assert _http_status(f"{prefect}/flows/filter", "inferloop:wrong-password", {}) == 401
    assert _http_status(f"{prefect}/flows/filter", prefect_auth, {}) == 200
    assert _http_status(mlflow) == 401
    assert _http_status(mlflow, f"{credentials['MLFLOW_TRACKING_USERNAME']}:wrong-password") == 401
    assert _http_status(mlflow, mlflow_auth) == 200

    import psycopg2

    connect = dict(host="127.0.0.1", port=prod["ports"]["POSTGRES"], user="inferloop", dbname="prefect")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(password="wrong-password", **connect)
    psycopg2.connect(password=credentials["PGPASSWORD"], **connect).close()

    # The online endpoint takes only the key `up` showed, once; no log holds it.
    serve = f"http://127.0.0.1:{prod['ports']['SERVE']}/invocations"
    key = re.search(r"shown this once: (\S+)", prod["up"].stdout).group(1)
    assert _scoring_status(serve, None) == 401 and _scoring_status(serve, "il_not-a-key") == 401
    assert _scoring_status(serve, key) == 503  # taken; no model is loaded yet
    assert not [log.name for log in prod["stack_dir"].glob("*.log") if key in log.read_text()]

    ports = set(prod["ports"].values())
    assert _listening_addresses(ports) == dict.fromkeys(ports, "127.0.0.1")
    assert "PASSWORD" not in prod["up"].stdout and credentials["PGPASSWORD"] not in prod["up"].stdout

    # The database password and MLflow's signing key reach only the servers that use them.
    server_only = {credentials["PGPASSWORD"], credentials["MLFLOW_FLASK_SERVER_SECRET_KEY"]}
    holders = {
        pid_file.stem
        for pid_file in prod["stack_dir"].glob("*.pid")
        for secret in server_only
        if secret in Path(f"/proc/{pid_file.read_text().strip()}/environ").read_text()
    }
    assert holders == {"prefect", "mlflow"}


@pytest.fixture(scope="module")
def loop(prod):
    """The loop on the prod stack: generate to S3, train (the first champion), score on Dask, a
    scheduled-style run through the Prefect worker, monitor. (Challenger and promotion: the same
    flows on the same stores, covered on the test stack by tests/e2e/test_promotion.py.)"""
    cli = prod["cli"]
    for step in (
        ("data", "generate", "--days", "12", "--rows-per-day", "500"),
        ("train", "--start", "2026-01-01", "--end", "2026-01-07"),
        ("infer", "--from", "2026-01-08", "--to", "2026-01-10"),
        ("monitor", "--date", "2026-01-10"),
    ):
        result = cli(*step)
        assert result.returncode == 0, f"inferloop {' '.join(step)}:\n{result.stdout}\n{result.stderr}"

    prefect = f"http://127.0.0.1:{prod['ports']['PREFECT']}"
    auth = prod["credentials"]["PREFECT_API_AUTH_STRING"]
    deployments = {d["name"]: d for d in api(f"{prefect}/api/deployments/filter", {}, auth=auth)}
    run = api(
        f"{prefect}/api/deployments/{deployments['batch-inference-daily']['id']}/create_flow_run",
        {"parameters": {"partition_date": "2026-01-11"}},
        auth=auth,
    )
    finished = wait_for_run(prefect, run["id"], auth=auth)
    logs = api(f"{prefect}/api/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}}, auth=auth)
    assert finished["state"]["type"] == "COMPLETED", "\n".join(log["message"] for log in logs)
    return prefect, auth


def test_mlflow_grants_another_account_nothing_unless_granted(prod, loop):
    """default_permission = NO_PERMISSIONS: an account with no role may log in and work on what it
    creates, but reads the loop's model only once granted."""
    mlflow = f"http://127.0.0.1:{prod['ports']['MLFLOW']}/api"
    credentials = prod["credentials"]
    admin = f"{ADMIN_USER}:{credentials['MLFLOW_AUTH_ADMIN_PASSWORD']}"
    name, password = "analyst", secrets.token_urlsafe(16)
    api(f"{mlflow}/2.0/mlflow/users/create", {"username": name, "password": password}, auth=admin)
    as_analyst = f"{name}:{password}"
    model = f"{mlflow}/2.0/mlflow/registered-models/get?name={MODEL}"
    experiments = api(f"{mlflow}/2.0/mlflow/experiments/search", {"max_results": 100}, auth=admin)
    (training,) = [e for e in experiments["experiments"] if e["name"] == "inferloop-training"]
    training_url = f"{mlflow}/2.0/mlflow/experiments/get?experiment_id={training['experiment_id']}"

    assert _http_status(model, admin) == 200 and _http_status(training_url, admin) == 200
    assert _http_status(model, as_analyst) == 403
    assert _http_status(training_url, as_analyst) == 403
    own = api(f"{mlflow}/2.0/mlflow/experiments/create", {"name": "analyst-scratch"}, auth=as_analyst)
    own_url = f"{mlflow}/2.0/mlflow/experiments/get?experiment_id={own['experiment_id']}"
    assert _http_status(own_url, as_analyst) == 200

    grant = {"username": name, "resource_type": "registered_model", "resource_id": MODEL}
    api(f"{mlflow}/3.0/mlflow/users/permissions/grant", {**grant, "permission": "READ"}, auth=admin)
    assert _http_status(model, as_analyst) == 200
    assert _http_status(training_url, as_analyst) == 403


def _s3(prod):
    return boto3.client(
        "s3",
        endpoint_url=prod["client"]["INFERLOOP_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=prod["credentials"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=prod["credentials"]["AWS_SECRET_ACCESS_KEY"],
    )


def _objects(prod) -> dict[str, bytes]:
    s3 = _s3(prod)
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="inferloop")
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket="inferloop", Key=key)["Body"].read() for key in keys}


def test_loop_runs_on_postgres_s3_and_dask(prod, loop):
    import psycopg2

    objects = _objects(prod)
    scored = {k for k in objects if k.startswith("lake/predictions/") and k.endswith("_manifest.json")}
    assert {k.split("date=")[1].split("/")[0] for k in scored} >= {
        "2026-01-08",
        "2026-01-09",
        "2026-01-10",
        "2026-01-11",
    }
    assert any(k.startswith("mlartifacts/") and k.endswith("MLmodel") for k in objects), (
        "MLflow's model artifacts are on S3"
    )
    assert not (prod["stack_dir"].parent / "mlartifacts").exists()
    assert not (prod["stack_dir"].parent / "lake").exists()

    connect = dict(host="127.0.0.1", port=prod["ports"]["POSTGRES"], user="inferloop")
    password = prod["credentials"]["PGPASSWORD"]
    with psycopg2.connect(dbname="prefect", password=password, **connect) as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT flow.name, count(*) FROM flow_run JOIN flow ON flow_run.flow_id = flow.id "
            "WHERE flow_run.state_type = 'COMPLETED' GROUP BY flow.name"
        )
        completed = dict(cursor.fetchall())
        assert completed == {"train": 1, "batch_inference": 2, "monitor": 1}
    with psycopg2.connect(dbname="mlflow", password=password, **connect) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM model_versions WHERE name = %s", (MODEL,))
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT version FROM registered_model_aliases WHERE alias = 'champion'")
        assert cursor.fetchone() == (1,)
    assert not list(prod["stack_dir"].parent.glob("*.db")), "no SQLite store in the prod profile"

    # Scoring ran on the cluster's workers, not in the flow's process.
    worker_logs = "".join(p.read_text() for p in prod["stack_dir"].glob("dask-worker-*.log"))
    assert worker_logs.count("Task run 'score-partition") >= 4


def _prefect_records(prefect: str, auth: str, kind: str) -> list[dict]:
    records, offset = [], 0
    while page := api(f"{prefect}/api/{kind}/filter", {"limit": 200, "offset": offset}, auth=auth):
        records += page
        offset += len(page)
    return records


def _mlflow_metadata(prod) -> str:
    """Every experiment's runs (params, tags, names) and every model version (tags, descriptions)."""
    from mlflow import MlflowClient

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({k: prod["credentials"][k] for k in saved})
    try:
        client = MlflowClient(prod["client"]["INFERLOOP_TRACKING_URI"])
        experiments = client.search_experiments()
        runs = client.search_runs([e.experiment_id for e in experiments], max_results=1000)
        versions = client.search_model_versions()
        models = client.search_registered_models()
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    assert runs and versions
    return repr([r.to_dictionary() for r in runs]) + repr(versions) + repr(models) + repr(experiments)


def test_no_credential_in_logs_artifacts_params_tags_objects_or_command_lines(prod, loop):
    prefect, auth = loop
    secrets = [v for k, v in prod["credentials"].items() if k != "MLFLOW_TRACKING_USERNAME"]
    secrets = [s.partition(":")[2] if s.startswith("inferloop:") else s for s in secrets]
    secrets.remove(prod["credentials"]["AWS_ACCESS_KEY_ID"])  # an identifier, sent in every request

    stack_logs = {p.name: p.read_text() for p in prod["stack_dir"].glob("*.log")}
    assert set(stack_logs) >= {"prefect.log", "mlflow.log", "postgres.log", "worker.log", "dask-worker-1.log"}
    places = {
        **{f"stack log {name}": text for name, text in stack_logs.items()},
        **{f"s3://inferloop/{key}": body.decode("latin-1") for key, body in _objects(prod).items()},
        "Prefect logs": repr(_prefect_records(prefect, auth, "logs")),
        "Prefect artifacts": repr(_prefect_records(prefect, auth, "artifacts")),
        "Prefect flow runs (parameters, job variables)": repr(_prefect_records(prefect, auth, "flow_runs")),
        "Prefect deployments": repr(_prefect_records(prefect, auth, "deployments")),
        "MLflow runs, models, versions": _mlflow_metadata(prod),
    }
    for pid_file in prod["stack_dir"].glob("*.pid"):
        cmdline = Path(f"/proc/{pid_file.read_text().strip()}/cmdline")
        places[f"command line of {pid_file.stem}"] = cmdline.read_text() if cmdline.exists() else ""
    # The scan reads what it claims to: each kind of place holds what the loop put there.
    assert "Registered transactions-classifier version 1" in places["Prefect logs"]
    assert (
        "scoring-transactions" in places["Prefect artifacts"]
        and "2026-01-11" in places["Prefect flow runs (parameters, job variables)"]
    )
    assert "holdout_roc_auc" in places["MLflow runs, models, versions"]
    assert '"PUT /inferloop/lake/' in places["stack log s3.log"]
    assert "basic-auth" in places["command line of mlflow"]
    assert len(places) > 20 and sum(map(len, places.values())) > 100_000
    leaks = [
        (place, secret[:4] + "...")
        for place, text in places.items()
        for s in secrets
        if (secret := s) in text
    ]
    assert not leaks


def _alias_versions(mlflow: str, auth: str) -> dict[str, str]:
    model = api(f"{mlflow}/2.0/mlflow/registered-models/get?name={MODEL}", auth=auth)["registered_model"]
    return {a["alias"]: a["version"] for a in model.get("aliases", [])}


def test_only_an_approver_moves_champion_and_a_reader_browses(prod, loop):
    """Issue 16: the reader sees everything and changes nothing (403, the aliases stay); the
    loop's account (the approver role) moves aliases; it is no MLflow admin."""
    from inferloop.stack.mlflow_roles import APPROVER_ROLE, READER_ROLE, Account, ensure_roles

    mlflow = f"http://127.0.0.1:{prod['ports']['MLFLOW']}/api"
    credentials = prod["credentials"]
    loop_account = f"{credentials['MLFLOW_TRACKING_USERNAME']}:{credentials['MLFLOW_TRACKING_PASSWORD']}"
    reader = f"{READER_USER}:{credentials['MLFLOW_READER_PASSWORD']}"
    before = _alias_versions(mlflow, reader)  # the reader browses the model and its aliases
    assert before["champion"] == "1" and "previous_champion" not in before
    experiments = api(f"{mlflow}/2.0/mlflow/experiments/search", {"max_results": 100}, auth=reader)
    assert "inferloop-training" in {e["name"] for e in experiments["experiments"]}

    # The reader may move, add or remove no alias: each attempt is refused before MLflow looks at
    # the versions (the loop trained only v1; a move to v2 is refused for want of the right).
    alias = f"{mlflow}/2.0/mlflow/registered-models/alias"
    for name, version in (("champion", "2"), ("previous_champion", "1")):
        assert _http_status(alias, reader, {"name": MODEL, "alias": name, "version": version}) == 403
    assert _http_status(alias, reader, {"name": MODEL, "alias": "champion"}, method="DELETE") == 403
    assert _alias_versions(mlflow, loop_account) == before

    # The approver (the loop's account) sets and removes @previous_champion.
    api(alias, {"name": MODEL, "alias": "previous_champion", "version": "1"}, auth=loop_account)
    assert _alias_versions(mlflow, reader) == {**before, "previous_champion": "1"}
    api(alias, {"name": MODEL, "alias": "previous_champion"}, auth=loop_account, method="DELETE")
    assert _alias_versions(mlflow, reader) == before
    # The loop's credentials, which every flow run and Dask worker holds, make no accounts.
    create_user = f"{mlflow}/2.0/mlflow/users/create"
    assert _http_status(create_user, loop_account, {"username": "x", "password": "x" * 16}) == 403

    # `inferloop up` makes roles and accounts idempotently: a second pass adds and changes nothing.
    admin = f"{ADMIN_USER}:{credentials['MLFLOW_AUTH_ADMIN_PASSWORD']}"
    roles_before = api(f"{mlflow}/3.0/mlflow/roles/list?workspace=default", auth=admin)
    ensure_roles(
        f"http://127.0.0.1:{prod['ports']['MLFLOW']}",
        (ADMIN_USER, credentials["MLFLOW_AUTH_ADMIN_PASSWORD"]),
        [
            Account(
                credentials["MLFLOW_TRACKING_USERNAME"],
                credentials["MLFLOW_TRACKING_PASSWORD"],
                APPROVER_ROLE,
            ),
            Account(READER_USER, credentials["MLFLOW_READER_PASSWORD"], READER_ROLE),
        ],
    )
    assert api(f"{mlflow}/3.0/mlflow/roles/list?workspace=default", auth=admin) == roles_before
    assert _alias_versions(mlflow, reader) == before


def test_dask_scheduler_refuses_clients_without_the_cluster_key(prod):
    """Issue 17: only a holder of the cluster's key connects; its workers hold the stack's client
    credentials, which an unauthenticated `Client.run` would read."""
    from distributed import Client
    from distributed.comm.core import CommClosedError
    from distributed.security import Security

    client_env = prod["client"]
    address = client_env["INFERLOOP_DASK_ADDRESS"]
    assert address.startswith("tls://")
    key_files = [Path(client_env[f"DASK_DISTRIBUTED__COMM__TLS__CLIENT__{part}"]) for part in ("CERT", "KEY")]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in key_files)

    with pytest.raises((CommClosedError, OSError)):  # a certificate of its own: the handshake fails
        Client(address, security=Security.temporary(), timeout=10)
    with pytest.raises((CommClosedError, OSError)):  # plain TCP: the scheduler hangs up
        Client(address.replace("tls://", "tcp://"), timeout=10)

    stack_key = Security(
        require_encryption=True,
        tls_ca_file=client_env["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"],
        tls_client_cert=str(key_files[0]),
        tls_client_key=str(key_files[1]),
    )
    with Client(address, security=stack_key, timeout=30) as client:
        held = client.run(lambda: "AWS_SECRET_ACCESS_KEY" in os.environ)
    assert held and all(held.values()), "what the refused clients would have read"


def test_s3_endpoint_refuses_unsigned_requests(prod):
    """Issue 17: no list, GET or PUT on the bucket that holds the lake and MLflow's artifacts
    without the stack's key; signed requests work; moto's control API is closed."""
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    endpoint = prod["client"]["INFERLOOP_S3_ENDPOINT_URL"]
    signed = _s3(prod)
    signed.put_object(Bucket="inferloop", Key="lake/_probe.txt", Body=b"signed")
    unsigned = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    wrong_key = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=prod["credentials"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key="not-the-secret",
    )
    attempts = {
        "unsigned list": lambda: unsigned.list_objects_v2(Bucket="inferloop", Prefix="lake/"),
        "unsigned GET": lambda: unsigned.get_object(Bucket="inferloop", Key="lake/_probe.txt"),
        "unsigned PUT": lambda: unsigned.put_object(Bucket="inferloop", Key="lake/_planted", Body=b"x"),
        "wrongly signed PUT": lambda: wrong_key.put_object(
            Bucket="inferloop", Key="lake/_planted", Body=b"x"
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, name
    listed = {o["Key"] for o in signed.list_objects_v2(Bucket="inferloop", Prefix="lake/_")["Contents"]}
    assert listed == {"lake/_probe.txt"}, "nothing was planted"
    signed.delete_object(Bucket="inferloop", Key="lake/_probe.txt")
    for path in ("/moto-api/data.json", "/moto-api/reset-auth"):
        assert _http_status(f"{endpoint}{path}", payload={}) == 403, path
