"""The GX project in `expectations/gx`: opening it, reading and saving its suites.

Two suites per dataset: `<dataset>_training` (with the label) and `<dataset>_inference` (without).
Every expectation carries `meta.severity`: `critical` failures refuse the batch; `row` failures
quarantine the offending rows (and refuse the batch if their share exceeds the expectation's
`mostly` tolerance, or without one, the gate's `max_quarantine_share`). The row-level quarantine
mask is derived from these same definitions. Proposed suites come from tasks/gate/suggest.py.
"""

import atexit
import contextlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.owners import owner_mark
from inferloop.core.settings import REPO_ROOT, GateSettings
from inferloop.runtime.debris import OWNER_FILE

DATASOURCE, ASSET, BATCH_DEFINITION = "dataframes", "partition", "whole_partition"
GX_FOLDERS = ("expectations", "checkpoints", "validation_definitions")  # a project's committed JSON
Purpose = Literal["training", "inference"]

NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "Float64", "Int64"]
STRING_TYPES = ["object", "str", "string"]
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]
ID_TYPES = ["int64", "int32", "Int64", *STRING_TYPES]


class SuiteMissingError(InferloopError, LookupError):
    """No committed suite for this dataset and purpose."""


def suite_name(spec: DatasetSpec, purpose: Purpose) -> str:
    return f"{spec.name}_{purpose}"


# GX rewrites great_expectations.yml when it opens a file context: two processes (or threads)
# opening the committed project at once can read each other's half-written file. Runs therefore
# read a private per-process copy, and GX calls within a process are serialised.
gx_lock = threading.RLock()
_workspaces: dict[tuple[Path, Path], object] = {}
_committed: dict[str, Path] = {}  # a private copy's GX root -> the committed project it copies
_copies: list[Path] = []  # this process's private copies, removed when it exits
_versions: dict[tuple[Path, Path], tuple] = {}  # the committed project each copy was made of


def remove_private_copies() -> None:
    for workspace in _copies:
        shutil.rmtree(workspace, ignore_errors=True)


def _check_project(project: Path) -> None:
    if not (project / "gx" / "great_expectations.yml").exists():
        raise InferloopError(
            f"No GX project at {project}/gx: set INFERLOOP_EXPECTATIONS_DIR "
            "to a folder holding gx/great_expectations.yml"
        )


def _file_context(project: Path, gate: GateSettings):
    import great_expectations as gx

    gate.gx_runtime_dir.mkdir(parents=True, exist_ok=True)
    os.environ["INFERLOOP_GX_RUNTIME_DIR"] = str(gate.gx_runtime_dir)
    context = gx.get_context(mode="file", project_root_dir=str(project))
    if DATASOURCE not in [ds.name for ds in context.data_sources.all().values()]:
        raise InferloopError(
            f"The GX project at {project} lacks the '{DATASOURCE}' "
            "datasource: restore expectations/gx/great_expectations.yml"
        )
    return context


def committed_version(project: Path) -> tuple:
    """What changes when a committed suite, checkpoint or the project's configuration does (the
    files GX reads, stat'ed: no file is read)."""
    gx = project / "gx"
    committed = (p for folder in GX_FOLDERS for p in (gx / folder).glob("*.json"))
    files = [gx / "great_expectations.yml", *committed]
    version = []
    for path in sorted(files):
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            version.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(version)


def open_gx_context(gate: GateSettings):
    """The committed suites of `expectations_dir`, read from this process's private copy (copied
    again when the committed project changed: the gate reads its definitions from the committed
    files, and a worker runs for days); validation results and Data Docs go to the state dir.
    Hold `gx_lock` while using it."""
    key = (gate.expectations_dir, gate.gx_runtime_dir)
    with gx_lock:
        version = committed_version(gate.expectations_dir)
        if _versions.get(key) != version:  # opened first, or the committed project changed
            _check_project(gate.expectations_dir)
            gate.gx_runtime_dir.mkdir(parents=True, exist_ok=True)
            workspace = Path(tempfile.mkdtemp(prefix="project-", dir=gate.gx_runtime_dir))
            if not _copies:
                atexit.register(remove_private_copies)
            _copies.append(workspace)
            (workspace / OWNER_FILE).write_text(owner_mark())  # swept by the next command if killed
            shutil.copytree(gate.expectations_dir / "gx", workspace / "gx")
            _workspaces[key] = _file_context(workspace, gate)
            _committed[str(_workspaces[key].root_directory)] = gate.expectations_dir
            _versions[key] = version
        return _workspaces[key]


def open_gx_project_for_edit(gate: GateSettings):
    """The committed GX project itself, for writing proposed suites into it; in a folder without
    one (a new feed's own expectations), a project like this repository's, without suites."""
    if not (gate.expectations_dir / "gx").exists():
        create_project(gate.expectations_dir)
    _check_project(gate.expectations_dir)
    return _file_context(gate.expectations_dir, gate)


def create_project(project: Path) -> None:
    """A GX project at `project`: this repository's configuration (the `dataframes` datasource
    the gate validates through; results and Data Docs in the state dir), no suite yet."""
    skeleton = REPO_ROOT / "expectations" / "gx" / "great_expectations.yml"
    if not skeleton.exists():  # not run from the repository (or its image): nothing to copy
        return
    for folder in GX_FOLDERS:
        (project / "gx" / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(skeleton, project / "gx" / "great_expectations.yml")


def load_checkpoint(context, spec: DatasetSpec, purpose: Purpose):
    name = suite_name(spec, purpose)
    try:
        return context.checkpoints.get(name)
    except Exception as error:  # GX raises its own DataContextError family
        checkpoint = committed_suite_path(context, name).parent.parent / "checkpoints" / f"{name}.json"
        raise SuiteMissingError(_no_checkpoint(name, checkpoint)) from error


def _no_suite(name: str, path: Path) -> str:
    return (
        f"No GX suite '{name}': {path} does not exist. Propose one with "
        "`inferloop expectations suggest --from D1..D2`, review it and commit it"
    )


def _no_checkpoint(name: str, path: Path) -> str:
    return (
        f"No GX checkpoint '{name}': {path} does not exist (suites and their checkpoints are "
        "committed together). Propose both with `inferloop expectations suggest --from D1..D2`, "
        "review them and commit them"
    )


def committed_suite_path(context, name: str) -> Path:
    """Where the suite `name` of `context` is committed: in the project the user edits (e.g.
    `expectations/gx/expectations/NAME.json`), not the run's private copy; relative to the
    working directory when it is inside it."""
    root = Path(context.root_directory)
    return _shown(_committed.get(str(root), root.parent) / "gx" / "expectations" / f"{name}.json")


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


@dataclass(frozen=True)
class ExpectationDefinition:
    """One expectation of a committed suite, as its file holds it: all the row checks and the
    verdict read (GX itself validates samples, see tasks/gate/gx_runs.py)."""

    type: str
    kwargs: dict
    meta: dict


def suite_definitions(gate: GateSettings, spec: DatasetSpec, purpose: Purpose) -> list[ExpectationDefinition]:
    """The committed suite's expectations, read from its JSON file without importing GX (2 s of
    a scoring command); SuiteMissingError names a missing suite or checkpoint file, as opening
    them with GX does."""
    _check_project(gate.expectations_dir)
    name = suite_name(spec, purpose)
    project = gate.expectations_dir / "gx"
    suite, checkpoint = project / "expectations" / f"{name}.json", project / "checkpoints" / f"{name}.json"
    if not suite.exists():
        raise SuiteMissingError(_no_suite(name, _shown(suite)))
    if not checkpoint.exists():
        raise SuiteMissingError(_no_checkpoint(name, _shown(checkpoint)))
    try:
        saved = json.loads(suite.read_text())["expectations"]
        return [ExpectationDefinition(e["type"], e.get("kwargs") or {}, e.get("meta") or {}) for e in saved]
    except (ValueError, KeyError, TypeError) as error:
        raise InferloopError(
            f"{_shown(suite)} is not a GX suite ({error!r}): restore it from version control, or "
            "propose it again with `inferloop expectations suggest`"
        ) from error


def critical(expectation, **kwargs):
    """A failure refuses the whole batch."""
    return expectation(**kwargs, severity="critical", meta={"severity": "critical"})


def row_level(expectation, **kwargs):
    """Failing rows are quarantined (GX shows it as a warning); the batch goes on."""
    return expectation(**kwargs, severity="warning", meta={"severity": "row"})


def keep_expectation_ids(context, name: str, expectations: list) -> None:
    """Give each proposed expectation the id of the committed one it replaces (same type, same
    column), so proposing again changes only the values that changed, not every id."""
    try:
        committed = context.suites.get(name).expectations
    except Exception:  # GX's DataContextError family: no committed suite yet
        return
    ids = {(e.expectation_type, getattr(e, "column", None)): e.id for e in committed}
    for expectation in expectations:
        expectation.id = ids.get((expectation.expectation_type, getattr(expectation, "column", None)))


def save_suite(context, spec: DatasetSpec, purpose: Purpose, expectations: list) -> Path:
    """Write the suite with its validation definition and checkpoint into the GX project."""
    import great_expectations as gx

    name = suite_name(spec, purpose)
    suite = gx.ExpectationSuite(
        name=name, expectations=expectations, meta={"inferloop_dataset": spec.name, "purpose": purpose}
    )
    keep_expectation_ids(context, name, suite.expectations)
    suite = context.suites.add_or_update(suite)
    batch = context.data_sources.get(DATASOURCE).get_asset(ASSET).get_batch_definition(BATCH_DEFINITION)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[validation],
            result_format="SUMMARY",
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
        )
    )
    return Path(context.root_directory) / "expectations" / f"{name}.json"
