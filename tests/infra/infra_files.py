"""The committed files under infra/, parsed once for the infra tests (no network, no docker)."""

import tomllib
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

from inferloop.core.settings import GROUPS, REPO_ROOT

INFRA = REPO_ROOT / "infra"
K8S = INFRA / "k8s"
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
DEFAULTS = {name: field.default for model in GROUPS.values() for name, field in model.model_fields.items()}
CLIENT_ENV_FROM = [
    {"configMapRef": {"name": "inferloop-config"}},
    {"secretRef": {"name": "inferloop-credentials"}},
]


def read_yaml(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def committed_infra_files() -> list[Path]:
    """Files under infra/ except those infra/.gitignore keeps out (filled-in credentials)."""
    ignored = {line for line in (INFRA / ".gitignore").read_text().splitlines() if line and line[0] != "#"}
    return [
        path
        for path in sorted(INFRA.rglob("*"))
        if path.is_file() and path.name not in ignored and str(path.relative_to(INFRA)) not in ignored
    ]


def env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


COMPOSE = read_yaml(INFRA / "compose.yaml")[0]
COMPOSE_SERVICES = COMPOSE["services"]
K8S_MANIFESTS = sorted(set(K8S.glob("*.yaml")) - {K8S / "kustomization.yaml"})
K8S_DOCS = [doc for path in K8S_MANIFESTS for doc in read_yaml(path)]
KUSTOMIZATION = read_yaml(K8S / "kustomization.yaml")[0]


def k8s(kind: str, name: str) -> dict:
    matches = [d for d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name} in infra/k8s"
    return matches[0]


def container(deployment: str) -> dict:
    (only,) = k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def k8s_env(deployment: str) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container(deployment).get("env", [])}
