"""infra/ cannot run here (no container engine), so these tests hold it to the code it runs: every
file parses; the image, compose and Kubernetes name only settings, CLI flags and executables that
exist in this environment; versions and ports are the ones pyproject.toml and Settings state; and
no credential is committed. Fast: no network, no docker, no servers."""

import json
import re
import shlex
import sys
import tomllib
import typing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from inferloop.core.offline import TELEMETRY_OFF
from inferloop.core.settings import REPO_ROOT, Settings

INFRA = REPO_ROOT / "infra"
K8S = INFRA / "k8s"
VENV_BIN = Path(sys.executable).parent
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
# The verified set the image installs (pyproject.toml declares ranges).
PINS = {
    canonicalize_name(name): version
    for name, version in (
        line.split("==")
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
}
VERSION = PYPROJECT["project"]["version"]
IMAGE = f"inferloop:{VERSION}"
DEFAULTS = Settings.model_fields
DASK_PORT = DEFAULTS["dask_scheduler_port"].default
PORTS = {
    "prefect": DEFAULTS["prefect_port"].default,
    "mlflow": DEFAULTS["mlflow_port"].default,
    "s3": DEFAULTS["s3_port"].default,
    "dask": DASK_PORT,
    "postgres": DEFAULTS["postgres_port"].default,
}
DASK_WORKERS = DEFAULTS["dask_workers"].default
# prefect-kubernetes is installed in the image only. Its settings, as of the version pinned there
# (test_image_versions_match_pyproject checks the pin, so a new pin means re-checking these).
PREFECT_KUBERNETES = "0.8.0"
PREFECT_KUBERNETES_SETTINGS = {
    "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES",
    "PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME",
    "PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY",
}
CREDENTIAL_KEY = re.compile(r"PASSWORD|SECRET|AUTH_STRING|ACCESS_KEY|TOKEN|CONNECTION_URL|STORE_URI")
CREDENTIAL_ASSIGNMENT = re.compile(
    r"(?<![{A-Z_])([A-Z_]*(?:PASSWORD|SECRET_ACCESS_KEY|AUTH_STRING))[=:] *(\S+)"
)
PLACEHOLDER = "change-me"
K8S_FLOW_POOL_SED = "sed 's/\\*process_pool/*kubernetes_pool/' prefect.yaml"


def committed_infra_files() -> list[Path]:
    """Files under infra/ except those infra/.gitignore keeps out (filled-in credentials)."""
    ignored = {line for line in (INFRA / ".gitignore").read_text().splitlines() if line and line[0] != "#"}
    return [
        path
        for path in sorted(INFRA.rglob("*"))
        if path.is_file() and path.name not in ignored and str(path.relative_to(INFRA)) not in ignored
    ]


def read_yaml(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


COMPOSE = read_yaml(INFRA / "compose.yaml")[0]
SERVICES = COMPOSE["services"]
K8S_MANIFESTS = sorted(set(K8S.glob("*.yaml")) - {K8S / "kustomization.yaml"})
K8S_DOCS = [doc for path in K8S_MANIFESTS for doc in read_yaml(path)]
KUSTOMIZATION = read_yaml(K8S / "kustomization.yaml")[0]
JOB_TEMPLATE = json.loads((K8S / "base-job-template.json").read_text())
JOB_POD = JOB_TEMPLATE["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
PREFECT_YAML = read_yaml(REPO_ROOT / "prefect.yaml")[0]


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def k8s(kind: str, name: str) -> dict:
    matches = [d for d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name} in infra/k8s"
    return matches[0]


def container(deployment: str) -> dict:
    (only,) = k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def k8s_env(deployment: str) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container(deployment).get("env", [])}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of infra/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile_env() -> dict[str, str]:
    pairs = [pair for op, args in dockerfile() if op == "ENV" for pair in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


def shell_commands(command: list[str] | str) -> list[list[str]]:
    """The simple commands a container runs: the list itself, or each command of an `sh -c`."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if argv[:2] != ["sh", "-c"]:
        return [argv]
    parts = re.split(r"&&|\|\||;|\||[{}]", argv[2])
    return [shlex.split(part) for part in parts if part.strip()]


def inferloop_commands() -> list[list[str]]:
    """Every command the inferloop image is given: Dockerfile CMD, compose, Kubernetes."""
    (cmd,) = [json.loads(args) for op, args in dockerfile() if op == "CMD"]
    commands = [cmd]
    for service in SERVICES.values():
        if service.get("image") == IMAGE and "command" in service:
            commands += shell_commands(service["command"])
    for doc in K8S_DOCS:
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c["image"] == IMAGE:
                    commands.append(c["args"])
    return commands


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def cyclopts_flags(function) -> set[str]:
    import cyclopts

    names = set()
    for hint in typing.get_type_hints(function, include_extras=True).values():
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, cyclopts.Parameter):
                names.update(meta.name or ())
                names.update([meta.alias] if isinstance(meta.alias, str) else meta.alias or ())
    return names | {"--prompt", "--no-prompt", "--profile"}


def cli_flags(argv: list[str]) -> set[str]:
    """The options the command named by argv accepts, read from the installed CLI's definition."""
    if argv[0] == "prefect":
        from prefect.cli import server, work_pool, worker
        from prefect.cli.deploy import _commands

        words = tuple(word for word in argv[1:] if not word.startswith("-"))
        commands = {
            ("server", "start"): server.start,
            ("worker", "start"): worker.start,
            ("work-pool", "create"): work_pool.create,
            ("deploy",): _commands.deploy,
        }
        (function,) = [f for words_, f in commands.items() if words[: len(words_)] == words_]
        return cyclopts_flags(function)
    if argv[0] == "mlflow":
        from mlflow.cli import cli

        return {opt for param in cli.commands[argv[1]].params for opt in param.opts}
    if argv[0] == "dask":
        from distributed.cli import dask_scheduler, dask_worker

        click_command = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}[argv[1]]
        return {opt for param in click_command.params for opt in param.opts + param.secondary_opts}
    raise AssertionError(f"no CLI definition known for {argv}")


# --- parsing and layout ------------------------------------------------------------------------


def test_every_infra_file_parses():
    yamls = [p for p in committed_infra_files() if p.suffix in {".yaml", ".yml"}]
    assert {p.name for p in yamls} >= {"compose.yaml", "kustomization.yaml", "dask.yaml", "mlflow.yaml"}
    for path in yamls:
        assert read_yaml(path), f"{path} is empty"
    assert JOB_TEMPLATE["job_configuration"]["job_manifest"]["kind"] == "Job"


def test_compose_runs_the_full_stack_from_pinned_images():
    assert set(SERVICES) == {
        "postgres", "minio", "minio-init", "prefect-server", "prefect-deploy", "prefect-worker",
        "mlflow", "dask-scheduler", "dask-worker",
    }  # fmt: skip
    ours = {name for name, s in SERVICES.items() if s["image"] == IMAGE}
    assert ours == {
        "prefect-server",
        "prefect-deploy",
        "prefect-worker",
        "mlflow",
        "dask-scheduler",
        "dask-worker",
    }
    for name in ours:
        assert (INFRA / SERVICES[name]["build"]["context"] / SERVICES[name]["build"]["dockerfile"]).samefile(
            INFRA / "Dockerfile"
        )
    assert re.fullmatch(r"postgres:15\.\d+-\w+", SERVICES["postgres"]["image"])
    assert re.fullmatch(r"minio/minio:RELEASE\.[0-9TZ-]+", SERVICES["minio"]["image"])
    assert re.fullmatch(r"minio/mc:RELEASE\.[0-9TZ-]+", SERVICES["minio-init"]["image"])
    assert SERVICES["dask-worker"]["deploy"]["replicas"] == DASK_WORKERS
    assert flag(SERVICES["dask-worker"]["command"], "--nthreads") == "1"


def test_kubernetes_manifests_declare_the_expected_objects():
    kinds = {(d["kind"], d["metadata"]["name"]) for d in K8S_DOCS}
    assert kinds == {
        ("Namespace", "inferloop"),
        ("Deployment", "prefect-server"), ("Service", "prefect-server"),
        ("Deployment", "mlflow"), ("Service", "mlflow"), ("PersistentVolumeClaim", "mlflow-auth"),
        ("Deployment", "dask-scheduler"), ("Service", "dask-scheduler"), ("Deployment", "dask-worker"),
        ("ServiceAccount", "prefect-worker"), ("Role", "prefect-worker"), ("RoleBinding", "prefect-worker"),
        ("Deployment", "prefect-worker"),
    }  # fmt: skip
    assert set(KUSTOMIZATION["resources"]) == {path.name for path in K8S_MANIFESTS}
    assert KUSTOMIZATION["namespace"] == "inferloop"
    generated = [*KUSTOMIZATION["configMapGenerator"], *KUSTOMIZATION["secretGenerator"]]
    for generator in generated:
        for name in [*generator.get("envs", []), *generator.get("files", [])]:
            # Credentials files are made from their committed .example, never committed themselves.
            assert (K8S / name).exists() or (K8S / f"{name}.example").exists(), name
    for deployment in (d for d in K8S_DOCS if d["kind"] == "Deployment"):
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert k8s("Deployment", "dask-worker")["spec"]["replicas"] == DASK_WORKERS
    assert flag(container("dask-worker")["args"], "--nthreads") == "1"


def test_prefect_worker_may_create_jobs_and_watch_their_pods():
    worker = k8s("Deployment", "prefect-worker")["spec"]["template"]["spec"]
    args = worker["containers"][0]["args"]
    assert (flag(args, "--pool"), flag(args, "--type")) == ("inferloop-kubernetes", "kubernetes")
    binding = k8s("RoleBinding", "prefect-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": worker["serviceAccountName"]}]
    rules = k8s("Role", binding["roleRef"]["name"])["rules"]

    def allowed(group: str, resource: str) -> set[str]:
        return {
            v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]
        }

    assert {"create", "get", "watch", "delete"} <= allowed("batch", "jobs")
    assert {"get", "list", "watch"} <= allowed("", "pods") and "get" in allowed("", "pods/log")
    # The Role is namespaced, so the worker's observer must watch its own namespace only.
    namespaces = k8s_env("prefect-worker")["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"]
    assert namespaces["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    template = worker["volumes"][0]["configMap"]["name"]
    mount = worker["containers"][0]["volumeMounts"][0]["mountPath"]
    assert template == "prefect-worker-base-job-template"
    assert flag(args, "--base-job-template") == f"{mount}/base-job-template.json"


# --- names that must exist ---------------------------------------------------------------------


def test_inferloop_variables_in_infra_are_settings():
    fields = {f"INFERLOOP_{name.upper()}" for name in DEFAULTS}
    # prefect.yaml's pull step reads INFERLOOP_PROJECT_DIR (where flow runs start), not Settings.
    assert "{{ $INFERLOOP_PROJECT_DIR }}" in (REPO_ROOT / "prefect.yaml").read_text()
    for path in [*committed_infra_files(), REPO_ROOT / "docs" / "production.md"]:
        named = set(re.findall(r"(?<![A-Z0-9_])INFERLOOP_[A-Z0-9_]+", path.read_text()))
        assert named - fields - {"INFERLOOP_PROJECT_DIR"} == set(), f"not a setting, in {path}"


def test_prefect_and_mlflow_variables_in_infra_exist():
    import mlflow.environment_variables
    import prefect.cli.flow_run
    from mlflow.cli import cli
    from prefect.settings import Settings as PrefectSettings
    from prefect.settings.legacy import _get_valid_setting_names

    # Named in the Kubernetes job template's description: read by `prefect flow-run execute` from
    # os.environ, not a setting.
    raw = "PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR"
    assert f'os.environ.get("{raw}"' in Path(prefect.cli.flow_run.__file__).read_text()
    prefect_names = _get_valid_setting_names(PrefectSettings) | PREFECT_KUBERNETES_SETTINGS | {raw}
    variable_type = mlflow.environment_variables._EnvironmentVariable
    mlflow_names = {
        v.name for v in vars(mlflow.environment_variables).values() if isinstance(v, variable_type)
    }
    mlflow_names |= {p.envvar for p in cli.commands["server"].params if isinstance(p.envvar, str)}
    for path in committed_infra_files():
        text = path.read_text()
        prefect = set(re.findall(r"(?<![A-Z0-9_])PREFECT_[A-Z0-9_]+", text))
        assert prefect - prefect_names == set(), f"not a Prefect setting, in {path}"
        mlflow = set(re.findall(r"(?<![A-Z0-9_])MLFLOW_[A-Z0-9_]+", text))
        assert mlflow - mlflow_names == set(), f"not an MLflow variable, in {path}"


def test_commands_name_executables_and_flags_that_exist():
    commands = inferloop_commands()
    assert {argv[0] for argv in commands} == {"prefect", "mlflow", "dask"}
    for argv in commands:
        assert (VENV_BIN / argv[0]).exists(), f"{argv[0]} is not installed in {VENV_BIN}"
        accepted = cli_flags(argv)
        for option in (a.split("=")[0] for a in argv if a.startswith("-")):
            positive = option.replace("--no-", "--", 1)
            assert option in accepted or positive in accepted, f"{' '.join(argv)}: no option {option}"


def test_image_is_built_from_the_repo_as_a_non_root_user():
    steps = dockerfile()
    env = dockerfile_env()
    copied = {source for op, args in steps if op == "COPY" for source in args.split()[:-1]}
    package_dirs = {"inferloop", *PYPROJECT["tool"]["setuptools"]["package-dir"].values()}
    assert (
        package_dirs | {"pyproject.toml", "constraints.txt", "prefect.yaml", "datasets", "expectations"}
        <= copied
    )
    (user,) = [args for op, args in steps if op == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    (workdir,) = [args for op, args in steps if op == "WORKDIR"]
    assert env["INFERLOOP_PROJECT_DIR"] == workdir
    # Paths the image names exist in the repository at the same place under WORKDIR.
    for name in ("INFERLOOP_EXPECTATIONS_DIR", "INFERLOOP_DATASET_SPEC", "MLFLOW_AUTH_CONFIG_PATH"):
        assert (REPO_ROOT / Path(env[name]).relative_to(workdir)).exists(), name
    telemetry = {k: v for k, v in TELEMETRY_OFF.items() if re.search("TRACK|TELEMETRY|ANALYTICS", k)}
    assert len(telemetry) >= 4
    assert telemetry.items() <= env.items()


def test_image_versions_match_pyproject():
    (base,) = [args for op, args in dockerfile() if op == "FROM"]
    python = Version(re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-\w+", base)[1])
    assert python in Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier
    (pip,) = [shlex.split(args) for op, args in dockerfile() if op == "RUN" and "pip install" in args]
    pinned = {Requirement(a) for a in pip[5:] if re.match(r"[A-Za-z]", a)}
    assert pip[:5] == ["pip", "install", "-c", "constraints.txt", "."], (
        "the verified set, within pyproject's ranges"
    )
    assert {(r.name, str(r.specifier)) for r in pinned} == {("prefect-kubernetes", f"=={PREFECT_KUBERNETES}")}
    # The production profile's server dependencies come from pyproject, not from the image.
    assert {"psycopg2-binary", "flask-wtf", "wtforms"} <= PINS.keys()
    assert any(r.startswith("mlflow[auth]") for r in PYPROJECT["project"]["dependencies"])
    assert PREFECT_YAML["prefect-version"] == PINS["prefect"]
    # Every reference to the image is to this version; no other image of Prefect, MLflow or Dask.
    for path in committed_infra_files():
        text = path.read_text()
        assert set(re.findall(r"inferloop:(\d[\w.]*)", text)) <= {VERSION}, path
        assert not re.search(r"prefecthq/prefect|mlflow/mlflow|daskdev/|dask/dask", text), path
    assert KUSTOMIZATION["images"] == [{"name": "inferloop", "newName": "inferloop", "newTag": VERSION}]


# --- ports, binding, addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "port", "setting"),
    [
        ("prefect-server", "prefect", "prefect_port"),
        ("mlflow", "mlflow", "mlflow_port"),
        ("minio", "s3", "s3_port"),
    ],
)
def test_compose_publishes_the_ports_the_code_expects(service, port, setting):
    host = f"${{INFERLOOP_STACK_HOST:-{DEFAULTS['stack_host'].default}}}"
    expected = f"{host}:${{INFERLOOP_{setting.upper()}:-{PORTS[port]}}}:{PORTS[port]}"
    assert expected in SERVICES[service]["ports"]


def test_databases_and_dask_stay_inside_the_network():
    assert "ports" not in SERVICES["postgres"] and SERVICES["postgres"]["expose"] == [str(PORTS["postgres"])]
    database_urls = [SERVICES["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]]
    database_urls.append(SERVICES["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert {url.rsplit("@", 1)[1] for url in database_urls} == {
        f"postgres:{PORTS['postgres']}/prefect",
        f"postgres:{PORTS['postgres']}/mlflow",
    }
    assert SERVICES["dask-scheduler"]["expose"] == [str(DASK_PORT)]
    assert all(not p.endswith(f":{DASK_PORT}") for p in SERVICES["dask-scheduler"]["ports"])


def test_servers_bind_all_interfaces_on_the_expected_ports():
    servers = {"prefect": PORTS["prefect"], "mlflow": PORTS["mlflow"], "dask": PORTS["dask"]}
    k8s_args = {"prefect": "prefect-server", "mlflow": "mlflow", "dask": "dask-scheduler"}
    for name, port in servers.items():
        for argv in (SERVICES[k8s_args[name]]["command"], container(k8s_args[name])["args"]):
            assert (flag(argv, "--host"), flag(argv, "--port")) == ("0.0.0.0", str(port)), argv
    k8s_ports = {
        svc: {p["port"] for p in k8s("Service", svc)["spec"]["ports"]}
        for svc in ("prefect-server", "mlflow", "dask-scheduler")
    }
    assert k8s_ports == {
        "prefect-server": {PORTS["prefect"]},
        "mlflow": {PORTS["mlflow"]},
        "dask-scheduler": {PORTS["dask"], 8787},
    }


def client_env_is_valid(env: dict[str, str], hosts: dict[str, str]) -> None:
    """The client variables point at the services by name and port, and Settings accepts them."""
    fields = {k.removeprefix("INFERLOOP_").lower(): v for k, v in env.items() if k.startswith("INFERLOOP_")}
    settings = Settings(**fields)
    assert settings.task_runner == "dask"
    assert urlsplit(env["PREFECT_API_URL"])[1:3] == (f"{hosts['prefect']}:{PORTS['prefect']}", "/api")
    assert urlsplit(settings.tracking_uri).netloc == f"{hosts['mlflow']}:{PORTS['mlflow']}"
    assert settings.dask_address == f"tcp://{hosts['dask']}:{PORTS['dask']}"
    assert urlsplit(settings.storage_uri).netloc == DEFAULTS["s3_bucket"].default
    if "s3" in hosts:
        assert urlsplit(settings.s3_endpoint_url).netloc == f"{hosts['s3']}:{PORTS['s3']}"


def test_compose_clients_reach_the_services_by_name():
    hosts = {"prefect": "prefect-server", "mlflow": "mlflow", "dask": "dask-scheduler", "s3": "minio"}
    assert set(hosts.values()) <= SERVICES.keys()
    for name in ("prefect-deploy", "prefect-worker", "dask-worker"):
        client_env_is_valid(SERVICES[name]["environment"], hosts)
    env = SERVICES["prefect-worker"]["environment"]
    assert SERVICES["dask-worker"]["command"][2] == env["INFERLOOP_DASK_ADDRESS"]
    bucket = DEFAULTS["s3_bucket"].default
    assert f"mc mb --ignore-existing local/{bucket}" in SERVICES["minio-init"]["entrypoint"][2]
    assert flag(SERVICES["mlflow"]["command"], "--artifacts-destination").startswith(f"s3://{bucket}/")
    assert SERVICES["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == env["INFERLOOP_S3_ENDPOINT_URL"]
    assert f"mlflow:{PORTS['mlflow']}" in SERVICES["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    ui_api = SERVICES["prefect-server"]["environment"]["PREFECT_SERVER_UI_API_URL"]
    assert ui_api.endswith(f"http://localhost:{PORTS['prefect']}/api}}")
    init_vars = set(re.findall(r"\$([A-Z_]+)", (INFRA / "postgres" / "init-databases.sh").read_text()))
    assert init_vars <= SERVICES["postgres"]["environment"].keys()


def test_kubernetes_clients_reach_the_services_by_name():
    config = env_file(K8S / "config.env")
    client_env_is_valid(config, {"prefect": "prefect-server", "mlflow": "mlflow", "dask": "dask-scheduler"})
    for deployment in ("prefect-worker", "dask-worker"):
        assert container(deployment)["envFrom"] == [
            {"configMapRef": {"name": "inferloop-config"}},
            {"secretRef": {"name": "inferloop-credentials"}},
        ]
    assert container("dask-worker")["args"][2] == config["INFERLOOP_DASK_ADDRESS"]
    bucket = urlsplit(config["INFERLOOP_STORAGE_URI"]).netloc
    assert urlsplit(config["MLFLOW_ARTIFACTS_DESTINATION"]).netloc == bucket
    assert f"mlflow:{PORTS['mlflow']}" in k8s_env("mlflow")["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"]


# --- the Kubernetes work pool ------------------------------------------------------------------


def test_kubernetes_work_pool_matches_its_job_template_and_manifests():
    variables = JOB_TEMPLATE["variables"]["properties"]
    placeholders = set(re.findall(r"\{\{ (\w+) \}\}", json.dumps(JOB_TEMPLATE["job_configuration"])))
    assert placeholders <= variables.keys()
    pool = PREFECT_YAML["definitions"]["kubernetes_work_pool"]
    assert pool["name"] == "inferloop-kubernetes"
    job_variables = pool["job_variables"]
    assert job_variables.keys() <= variables.keys()
    assert {k: variables[k]["default"] for k in job_variables} == job_variables
    assert job_variables["image"] == IMAGE
    assert job_variables["namespace"] == KUSTOMIZATION["namespace"]
    (job_container,) = JOB_POD["containers"]
    assert job_container["envFrom"] == [
        {"configMapRef": {"name": "{{ config_map_name }}"}},
        {"secretRef": {"name": "{{ secret_name }}"}},
    ]
    unhashed = {g["name"] for g in [*KUSTOMIZATION["configMapGenerator"], *KUSTOMIZATION["secretGenerator"]]
                if g.get("options", {}).get("disableNameSuffixHash")}  # fmt: skip
    assert {job_variables["config_map_name"], job_variables["secret_name"]} <= unhashed
    env = k8s_env("prefect-worker")
    auth_secret = env["PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME"]["value"]
    assert auth_secret == job_variables["secret_name"]


def test_kubernetes_job_template_renders_with_the_pinned_worker():
    pytest.importorskip("prefect_kubernetes", reason="prefect-kubernetes is installed in the image only")
    import uuid

    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.templating import apply_values
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration as JobConfiguration

    # What the worker does for a run with no job variables, minus block lookups (no API needed).
    defaults = JobConfiguration._get_base_config_defaults(JOB_TEMPLATE["variables"]["properties"])
    config = JobConfiguration(**apply_values(JOB_TEMPLATE["job_configuration"], defaults))
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), name="check"))
    pod = config.job_manifest["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == IMAGE
    assert pod["containers"][0]["envFrom"][1] == {"secretRef": {"name": "inferloop-credentials"}}


def test_local_deployments_keep_the_process_pool_and_the_documented_switch_moves_them():
    deployments = PREFECT_YAML["deployments"]
    assert {d["work_pool"]["name"] for d in deployments} == {"inferloop-process"}
    process_pool = flag(SERVICES["prefect-worker"]["command"], "--pool")
    assert process_pool == PREFECT_YAML["definitions"]["work_pool"]["name"]
    assert K8S_FLOW_POOL_SED in (REPO_ROOT / "docs" / "production.md").read_text()
    switched = (REPO_ROOT / "prefect.yaml").read_text().replace("*process_pool", "*kubernetes_pool")
    moved = yaml.safe_load(switched)["deployments"]
    assert [d["name"] for d in moved] == [d["name"] for d in deployments]
    assert {d["work_pool"]["name"] for d in moved} == {"inferloop-kubernetes"}
    assert all(d["work_pool"]["job_variables"]["image"] == IMAGE for d in moved)


# --- credentials -------------------------------------------------------------------------------


def test_compose_takes_credentials_from_the_environment_only():
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if CREDENTIAL_KEY.search(key):
                assert re.search(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), f"{name}.{key} must be ${{VAR:?...}}"
                assert ":-" not in value, f"{name}.{key}: a default would be a committed credential"
    for path in INFRA.glob("**/*.example"):
        for key, value in env_file(path).items():
            assert PLACEHOLDER in value, f"{path.name}: {key} must be a {PLACEHOLDER} placeholder"
    example = env_file(INFRA / ".env.example")
    compose_lines = (INFRA / "compose.yaml").read_text().splitlines()
    referenced = {v for line in compose_lines if line[:1] != "#" for v in re.findall(r"\$\{(\w+):\?", line)}
    assert referenced == example.keys(), "every required variable is in .env.example, and only those"


def test_kubernetes_takes_credentials_from_secrets_only():
    for deployment in (d for d in K8S_DOCS if d["kind"] == "Deployment"):
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            for entry in c.get("env", []):
                name = entry["name"]
                if CREDENTIAL_KEY.search(name) and not name.endswith(("_SECRET_NAME", "_SECRET_KEY")):
                    assert "secretKeyRef" in entry["valueFrom"], f"{deployment['metadata']['name']}: {name}"
    assert all(d["kind"] != "Secret" for d in K8S_DOCS), "Secrets come from secretGenerator only"
    assert not any(CREDENTIAL_KEY.search(key) for key in env_file(K8S / "config.env"))
    secret_keys = {
        entry["valueFrom"]["secretKeyRef"]["key"]
        for d in K8S_DOCS if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"] for entry in c.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }  # fmt: skip
    examples = env_file(K8S / "credentials.env.example") | env_file(K8S / "server-credentials.env.example")
    assert secret_keys <= examples.keys()


def test_no_credential_literal_is_committed():
    for path in committed_infra_files():
        text = path.read_text()
        for password in re.findall(r"://[^/\s:@'\"]+:([^@\s/'\"]+)@", text):
            assert password.startswith("${") or PLACEHOLDER in password, f"password in a URL in {path}"
        for key, value in CREDENTIAL_ASSIGNMENT.findall(text):
            assert value.startswith(("${", '"$$', "$$")) or PLACEHOLDER in value, f"{key} in {path}"
        assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN", text), path
