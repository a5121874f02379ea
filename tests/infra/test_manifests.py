"""infra/ cannot run here (no container engine), so these tests hold it to the code it runs: every
file parses; the image, compose and Kubernetes name only settings, CLI flags and executables that
exist in this environment; versions are the ones pyproject.toml and constraints.txt state; and no
credential is committed. What each service runs, on which port, with which variables, is the
service table's, checked in test_service_table.py. Fast: no network, no docker, no servers."""

import json
import re
import shlex
import sys
import typing
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from inferloop.core.offline import TELEMETRY_OFF
from inferloop.core.settings import ALERT_URL_PREFIX, REPO_ROOT
from inferloop.stack import dask_tls as dask_tls_files
from inferloop.stack.services import SERVICES, WORK_POOL
from tests.infra.infra_files import (
    COMPOSE,
    COMPOSE_SERVICES,
    DEFAULTS,
    IMAGE,
    INFRA,
    K8S,
    K8S_DOCS,
    K8S_MANIFESTS,
    KUSTOMIZATION,
    PINS,
    PYPROJECT,
    VERSION,
    committed_infra_files,
    container,
    env_file,
    k8s,
    k8s_env,
    read_yaml,
)

VENV_BIN = Path(sys.executable).parent
SERVICE_TABLE = REPO_ROOT / "inferloop" / "stack" / "services.py"
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
JOB_TEMPLATE = json.loads((K8S / "base-job-template.json").read_text())
JOB_POD = JOB_TEMPLATE["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
PREFECT_YAML = read_yaml(REPO_ROOT / "prefect.yaml")[0]


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
    """Every command of the pinned CLIs: the image's (Dockerfile CMD, compose, Kubernetes) and the
    ones `inferloop up` runs from the service table (the containers' are checked equal to it)."""
    (cmd,) = [json.loads(args) for op, args in dockerfile() if op == "CMD"]
    commands = [cmd]
    values = {"host": "127.0.0.1", "port": "1", "scheduler": "tcp://127.0.0.1:1", "data_dir": "/d", "n": "1"}
    for row in (r for r in SERVICES if r.image == "inferloop"):
        for profile in row.profiles:
            commands.append([*row.program, *row.arguments(profile, container=False, **values)])
    for service in COMPOSE_SERVICES.values():
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
    if argv[:2] == ["inferloop", "serve"]:
        import typer.main

        from inferloop.cli.commands import serve_app

        command = typer.main.get_group(serve_app)
        return {opt for param in command.params for opt in param.opts}
    raise AssertionError(f"no CLI definition known for {argv}")


# --- parsing and layout ------------------------------------------------------------------------


def test_every_infra_file_parses():
    yamls = [p for p in committed_infra_files() if p.suffix in {".yaml", ".yml"}]
    assert {p.name for p in yamls} >= {"compose.yaml", "kustomization.yaml", "dask.yaml", "mlflow.yaml"}
    for path in yamls:
        assert read_yaml(path), f"{path} is empty"
    assert JOB_TEMPLATE["job_configuration"]["job_manifest"]["kind"] == "Job"


def test_compose_runs_the_table_and_its_one_shots_from_pinned_images():
    # The bucket and S3 account; `inferloop deploy`; the Dask cluster's TLS key.
    one_shots = {"minio-init", "prefect-deploy", "dask-tls-init"}
    assert set(COMPOSE_SERVICES) == {row.compose for row in SERVICES if row.compose} | one_shots
    ours = {name for name, s in COMPOSE_SERVICES.items() if s["image"] == IMAGE}
    assert ours == {row.compose for row in SERVICES if row.compose and row.image == "inferloop"} | {
        "prefect-deploy",
        "dask-tls-init",
    }
    for name in ours:
        build = COMPOSE_SERVICES[name]["build"]
        assert (INFRA / build["context"] / build["dockerfile"]).samefile(INFRA / "Dockerfile")
    assert re.fullmatch(r"postgres:15\.\d+-\w+", COMPOSE_SERVICES["postgres"]["image"])
    assert re.fullmatch(r"minio/minio:RELEASE\.[0-9TZ-]+", COMPOSE_SERVICES["minio"]["image"])
    assert re.fullmatch(r"minio/mc:RELEASE\.[0-9TZ-]+", COMPOSE_SERVICES["minio-init"]["image"])
    # The databases' roles get the passwords the init script reads; the UI calls the published API.
    init_vars = set(re.findall(r"\$([A-Z_]+)", (INFRA / "postgres" / "init-databases.sh").read_text()))
    assert init_vars <= COMPOSE_SERVICES["postgres"]["environment"].keys()
    ui_api = COMPOSE_SERVICES["prefect-server"]["environment"]["PREFECT_SERVER_UI_API_URL"]
    assert ui_api.endswith(f"http://localhost:{DEFAULTS['prefect_port']}/api}}")


def test_kubernetes_manifests_declare_the_expected_objects():
    kinds = {(d["kind"], d["metadata"]["name"]) for d in K8S_DOCS}
    assert kinds == {
        ("Namespace", "inferloop"),
        ("Deployment", "prefect-server"), ("Service", "prefect-server"),
        ("Deployment", "mlflow"), ("Service", "mlflow"), ("PersistentVolumeClaim", "mlflow-auth"),
        ("Deployment", "dask-scheduler"), ("Service", "dask-scheduler"), ("Deployment", "dask-worker"),
        ("ServiceAccount", "prefect-worker"), ("Role", "prefect-worker"), ("RoleBinding", "prefect-worker"),
        ("Deployment", "prefect-worker"),
        ("Deployment", "inferloop-serve"), ("Service", "inferloop-serve"),
    }  # fmt: skip
    assert set(KUSTOMIZATION["resources"]) == {path.name for path in K8S_MANIFESTS}
    assert KUSTOMIZATION["namespace"] == "inferloop"
    generated = [*KUSTOMIZATION["configMapGenerator"], *KUSTOMIZATION["secretGenerator"]]
    # The Dask cluster's TLS files, as `python -m inferloop.stack.dask_tls infra/k8s/dask-tls` writes them.
    dask_tls = {
        f"dask-tls/{name}"
        for name in (dask_tls_files.CA_FILE, dask_tls_files.CERT_FILE, dask_tls_files.KEY_FILE)
    }
    for generator in generated:
        for name in [*generator.get("envs", []), *generator.get("files", [])]:
            # Credentials files are made from their committed .example, never committed themselves.
            assert name in dask_tls or (K8S / name).exists() or (K8S / f"{name}.example").exists(), name
    assert {"files": sorted(dask_tls)}.items() <= next(
        g for g in generated if g["name"] == "inferloop-dask-tls"
    ).items()
    for deployment in (d for d in K8S_DOCS if d["kind"] == "Deployment"):
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_endpoint_rolls_with_two_replicas_ready_only_with_a_model_and_its_keys_from_a_secret():
    spec = k8s("Deployment", "inferloop-serve")["spec"]
    assert spec["replicas"] == 2
    rolling = {"maxUnavailable": 0, "maxSurge": 1}  # a new pod ready before an old one stops
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": rolling}
    pod = spec["template"]["spec"]
    runs = container("inferloop-serve")
    assert runs["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert runs["livenessProbe"]["httpGet"]["path"] == "/health/live"
    keys_file = next(e["value"] for e in runs["env"] if e["name"] == "INFERLOOP_SERVE_KEYS_FILE")
    (mount,) = runs["volumeMounts"]
    (volume,) = pod["volumes"]
    (item,) = volume["secret"]["items"]
    assert keys_file == f"{mount['mountPath']}/{item['path']}" and mount["readOnly"] is True
    secret = volume["secret"]["secretName"]
    generator = next(g for g in KUSTOMIZATION["secretGenerator"] if g["name"] == secret)
    assert generator["files"] == [item["key"]]
    # compose: the same file, as a compose secret
    serve = COMPOSE_SERVICES["inferloop-serve"]
    (compose_secret,) = serve["secrets"]
    assert serve["environment"]["INFERLOOP_SERVE_KEYS_FILE"] == f"/run/secrets/{compose_secret}"
    assert (INFRA / f"{COMPOSE['secrets'][compose_secret]['file']}.example").exists()


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
    for path in [*committed_infra_files(), REPO_ROOT / "docs" / "production.md", SERVICE_TABLE]:
        named = set(re.findall(r"(?<![A-Z0-9_])INFERLOOP_[A-Z0-9_]+", path.read_text()))
        # alerts.yaml's channels read their webhook URLs from INFERLOOP_ALERT_* by name.
        named = {n for n in named if not n.startswith(ALERT_URL_PREFIX)}
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
    for path in [*committed_infra_files(), SERVICE_TABLE]:
        text = path.read_text()
        prefect = set(re.findall(r"(?<![A-Z0-9_])PREFECT_[A-Z0-9_]+", text))
        assert prefect - prefect_names == set(), f"not a Prefect setting, in {path}"
        mlflow = set(re.findall(r"(?<![A-Z0-9_])MLFLOW_[A-Z0-9_]+", text))
        assert mlflow - mlflow_names == set(), f"not an MLflow variable, in {path}"


def test_commands_name_executables_and_flags_that_exist():
    commands = inferloop_commands()
    assert {argv[0] for argv in commands} == {"prefect", "mlflow", "dask", "inferloop"}
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
    assert PREFECT_YAML["definitions"]["work_pool"]["name"] == WORK_POOL
    assert f"work-pool create {WORK_POOL} " in COMPOSE_SERVICES["prefect-deploy"]["command"][2]
    assert K8S_FLOW_POOL_SED in (REPO_ROOT / "docs" / "production.md").read_text()
    switched = (REPO_ROOT / "prefect.yaml").read_text().replace("*process_pool", "*kubernetes_pool")
    moved = yaml.safe_load(switched)["deployments"]
    assert [d["name"] for d in moved] == [d["name"] for d in deployments]
    assert {d["work_pool"]["name"] for d in moved} == {"inferloop-kubernetes"}
    assert all(d["work_pool"]["job_variables"]["image"] == IMAGE for d in moved)


# --- credentials -------------------------------------------------------------------------------


def test_compose_takes_credentials_from_the_environment_only():
    for name, service in COMPOSE_SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if CREDENTIAL_KEY.search(key):
                assert re.search(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), f"{name}.{key} must be ${{VAR:?...}}"
                assert ":-" not in value, f"{name}.{key}: a default would be a committed credential"
    for path in INFRA.glob("**/*.example"):
        if path.name.endswith(".json.example"):  # the endpoint's keys files: none committed
            assert json.loads(path.read_text()) == {"keys": []}, path.name
            continue
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
