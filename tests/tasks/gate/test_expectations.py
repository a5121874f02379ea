"""The GX project (tasks/gate/expectations.py): suites saved into a project and read back; runs
read a private copy, never the committed project. (The proposal rules: test_suggest.py.)"""

import json
import shutil

import pytest

from inferloop.core.errors import InferloopError
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.gate.expectations import (
    SuiteMissingError,
    committed_suite_path,
    load_checkpoint,
    open_gx_context,
    open_gx_project_for_edit,
    save_suite,
    suite_definitions,
)
from inferloop.tasks.gate.suggest import suggest_expectations


@pytest.fixture
def reference(spec):
    features, labels = generate_day(GeneratorConfig(rows_per_day=1_000), 0)
    return features.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column)


@pytest.fixture
def project(settings, tmp_path):
    """A copy of the committed GX project, and settings that point at it."""
    copy = tmp_path / "expectations"
    shutil.copytree(settings.gate.expectations_dir, copy)
    return copy, settings.with_overrides(expectations_dir=copy)


def test_a_saved_suite_reads_back_with_its_checkpoint(reference, spec, project):
    folder, settings = project
    context = open_gx_project_for_edit(settings.gate)
    proposed = suggest_expectations(reference, spec, "inference", [1_000])
    path = save_suite(context, spec, "inference", proposed)
    assert path == folder / "gx" / "expectations" / "transactions_inference.json"
    suite = context.suites.get("transactions_inference")
    assert len(suite.expectations) == len(proposed)
    assert suite.meta["purpose"] == "inference"
    assert context.checkpoints.get("transactions_inference").validation_definitions


def test_runs_read_a_private_copy_of_the_project(project):
    folder, settings = project
    committed = {p: p.read_bytes() for p in (folder / "gx").rglob("*") if p.is_file()}
    context = open_gx_context(settings.gate)
    assert open_gx_context(settings.gate) is context  # opened once per process
    assert not str(context.root_directory).startswith(str(folder))
    assert str(context.root_directory).startswith(str(settings.gate.gx_runtime_dir))
    assert {p: p.read_bytes() for p in (folder / "gx").rglob("*") if p.is_file()} == committed


def test_a_missing_suite_says_how_to_propose_one(spec, project):
    folder, settings = project
    (folder / "gx" / "expectations" / "transactions_training.json").unlink()
    with pytest.raises(SuiteMissingError, match="inferloop expectations suggest"):
        suite_definitions(settings.gate, spec, "training")


def test_a_suite_without_its_checkpoint_names_the_missing_file(spec, project):
    folder, settings = project
    (folder / "gx" / "checkpoints" / "transactions_training.json").unlink()
    with pytest.raises(SuiteMissingError) as missing:
        load_checkpoint(open_gx_context(settings.gate), spec, "training")
    message = str(missing.value)
    assert f"{folder}/gx/checkpoints/transactions_training.json does not exist" in message
    assert "inferloop expectations suggest" in message
    # The gate itself meets it as that error, not as GX's traceback.
    from datetime import date

    from inferloop.core.storage import lake_storage
    from inferloop.tasks.gate.partition_gate import PartitionGate

    with pytest.raises(SuiteMissingError, match="No GX checkpoint 'transactions_training'"):
        PartitionGate(lake_storage(settings.lake), spec, "training", date(2026, 1, 1), settings.gate)


def test_a_folder_without_a_gx_project_names_the_setting(settings, tmp_path):
    elsewhere = settings.with_overrides(expectations_dir=tmp_path)
    with pytest.raises(InferloopError, match="INFERLOOP_EXPECTATIONS_DIR"):
        open_gx_context(elsewhere.gate)


def test_a_missing_suite_names_the_committed_file_not_the_private_copy(spec, project):
    folder, settings = project
    (folder / "gx" / "expectations" / "transactions_training.json").unlink()
    open_gx_context(settings.gate)  # a run's private copy exists
    with pytest.raises(SuiteMissingError) as missing:
        suite_definitions(settings.gate, spec, "training")
    message = str(missing.value)
    assert f"{folder}/gx/expectations/transactions_training.json does not exist" in message
    assert str(settings.gate.gx_runtime_dir) not in message and "project-" not in message


def test_the_committed_suite_is_named_relative_to_the_working_directory(spec, settings, monkeypatch):
    monkeypatch.chdir(settings.gate.expectations_dir.parent)
    context = open_gx_context(settings.gate)
    assert str(committed_suite_path(context, "x_training")) == "expectations/gx/expectations/x_training.json"


def ids_by_expectation(suite_json: str) -> dict[tuple, str]:
    return {(e["type"], e["kwargs"].get("column")): e["id"] for e in json.loads(suite_json)["expectations"]}


def test_proposing_a_suite_again_keeps_the_ids_of_its_expectations(reference, spec, project):
    folder, settings = project
    path = folder / "gx" / "expectations" / "transactions_inference.json"
    committed = ids_by_expectation(path.read_text())
    context = open_gx_project_for_edit(settings.gate)
    proposed = suggest_expectations(reference, spec, "inference", [1_000])
    save_suite(context, spec, "inference", proposed)
    first = path.read_text()
    saved = ids_by_expectation(first)
    assert len(set(committed) & set(saved)) >= 20
    # Every expectation the committed suite already had keeps its id; a new one gets its own.
    assert {key: saved[key] for key in committed if key in saved} == {
        key: committed[key] for key in committed if key in saved
    }
    assert all(saved.values()) and len(set(saved.values())) == len(saved)
    save_suite(context, spec, "inference", suggest_expectations(reference, spec, "inference", [1_000]))
    assert path.read_text() == first  # the same window proposed again: no diff at all
