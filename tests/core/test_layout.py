"""The layout holds: everything installs under `inferloop`, and the core is a leaf that a serving
process, a Dask worker or a notebook can import without Prefect, MLflow or GX and without the
process being changed."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from inferloop.core.settings import REPO_ROOT

CORE_MODULES = sorted(
    f"inferloop.core.{path.stem}"
    for path in (REPO_ROOT / "inferloop" / "core").glob("*.py")
    if path.stem != "__init__"
)
HEAVY = ("prefect", "mlflow", "great_expectations")
PROCESS_SETTINGS = ("PREFECT_HOME", "DO_NOT_TRACK", "MALLOC_ARENA_MAX", "MLFLOW_DISABLE_TELEMETRY")


def run_isolated(code: str, tmp_path: Path) -> dict:
    """Run `code` in a fresh interpreter outside the repository (so `./flows` is not on the
    path) with none of the variables an entry point would set; it prints a JSON object."""
    env = {
        k: v for k, v in os.environ.items() if k not in PROCESS_SETTINGS and not k.startswith("INFERLOOP_")
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_nothing_installs_as_top_level_flows_or_tasks(tmp_path):
    found = run_isolated(
        "import importlib.util, json;"
        "print(json.dumps({n: importlib.util.find_spec(n) is not None"
        " for n in ('flows', 'tasks', 'inferloop.flows.train', 'inferloop.tasks.gate.partition_gate')}))",
        tmp_path,
    )
    assert found == {
        "flows": False,
        "tasks": False,
        "inferloop.flows.train": True,
        "inferloop.tasks.gate.partition_gate": True,
    }


def test_every_package_folder_is_declared_for_the_wheel():
    """A folder missing from pyproject's package list would be absent from a non-editable
    install (the Docker image) while every test here still passes."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    declared = set(pyproject["tool"]["setuptools"]["packages"])
    on_disk = set()
    for top, name in (("inferloop", "inferloop"), ("flows", "inferloop.flows"), ("tasks", "inferloop.tasks")):
        for init in (REPO_ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO_ROOT / top)
            on_disk.add(".".join([name, *relative.parts]))
    assert declared == on_disk


def test_core_modules_import_no_orchestration_registry_or_gx_and_change_nothing(tmp_path):
    assert "inferloop.core.settings" in CORE_MODULES
    loaded = run_isolated(
        "import importlib, json, os, sys;"
        f"[importlib.import_module(m) for m in {CORE_MODULES!r}];"
        f"print(json.dumps({{'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}),"
        f" 'set': sorted(k for k in {PROCESS_SETTINGS!r} if k in os.environ)}}))",
        tmp_path,
    )
    assert loaded == {"heavy": [], "set": []}


def test_an_entry_point_prepares_the_process(tmp_path):
    """The CLI (like a flow run) applies the offline defaults before anything else."""
    prepared = run_isolated(
        "import json, os; import inferloop.cli.commands;"
        f"print(json.dumps({{k: os.environ.get(k) for k in {PROCESS_SETTINGS!r}}}))",
        tmp_path,
    )
    assert prepared["DO_NOT_TRACK"] == "true"
    assert prepared["MALLOC_ARENA_MAX"] == "2"
    assert prepared["PREFECT_HOME"].endswith("prefect")


def test_no_source_imports_plain_flows_or_tasks():
    """`from tasks.x import y` works only from a checkout (the repo root on sys.path), not in a
    wheel install such as the image; import-linter cannot see it (outside the root package)."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for folder in ("inferloop", "flows", "tasks", "tests", "benchmarks")
        for path in (REPO_ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if line.lstrip().startswith(("from flows", "from tasks", "import flows", "import tasks"))
    ]
    assert offenders == []
