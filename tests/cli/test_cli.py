import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core.settings import REPO_ROOT
from tests.fixtures.elec2 import write_elec2_like_csv

INFERLOOP = str(Path(sys.executable).parent / "inferloop")


def test_help_is_fast_because_heavy_imports_are_lazy():
    code = (
        "import sys, inferloop.cli.commands; heavy = {'prefect', 'mlflow', 'great_expectations', "
        "'sklearn'} & set(sys.modules); print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_bad_setting_prints_the_knob_without_a_traceback(monkeypatch):
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", "ftp://nowhere")
    result = CliRunner().invoke(app, ["data", "generate", "--days", "1"])
    assert result.exit_code == 1
    assert "INFERLOOP_STORAGE_URI" in result.output and "Traceback" not in result.output


def test_unknown_scenario_is_a_clear_error(workdir):
    result = CliRunner().invoke(app, ["data", "generate", "--scenario", "chaos"])
    assert result.exit_code == 1 and "Unknown scenario 'chaos'" in result.output


def test_generate_writes_partitions(workdir):
    result = CliRunner().invoke(app, ["data", "generate", "--days", "3", "--rows-per-day", "100"])
    assert result.exit_code == 0, result.output
    assert len(list((workdir / "lake" / "transactions").glob("date=*/part-0.parquet"))) == 3
    assert len(list((workdir / "lake" / "transactions_labels").glob("date=*/*.parquet"))) == 3


@pytest.mark.slow
def test_infer_without_a_champion_says_what_to_do(workdir, prefect_harness):
    CliRunner().invoke(app, ["data", "generate", "--days", "2", "--rows-per-day", "300"])
    result = CliRunner().invoke(app, ["infer", "--date", "2026-01-02"])
    assert result.exit_code == 1
    assert "has the alias @champion: train one" in result.output


class NoFlow:
    """Stands in for a flow the command must not reach: any use of it fails the command."""

    def __getattr__(self, name):
        raise AssertionError("a flow was started")

    def __call__(self, *args, **kwargs):
        raise AssertionError("a flow was started")


@pytest.fixture
def no_flows(monkeypatch):
    import inferloop.flows.batch_inference
    import inferloop.flows.promote
    import inferloop.flows.validate

    monkeypatch.setattr(inferloop.flows.batch_inference, "batch_inference", NoFlow())
    monkeypatch.setattr(inferloop.flows.validate, "validate", NoFlow())
    monkeypatch.setattr(inferloop.flows.promote, "promote", NoFlow())
    monkeypatch.setattr(inferloop.flows.promote, "rollback", NoFlow())


@pytest.mark.parametrize(
    ("command", "hint"),
    [
        (["infer", "--date", "2030-01-01"], "score partitions the lake holds"),
        (["infer", "--from", "2030-01-01", "--to", "2030-01-03"], "score partitions the lake holds"),
        (["validate", "--date", "2030-01-01"], "validate a partition the lake holds"),
    ],
)
def test_a_partition_the_lake_lacks_fails_before_any_flow_starts(workdir, no_flows, command, hint):
    CliRunner().invoke(app, ["data", "generate", "--days", "2", "--rows-per-day", "100"])
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert "No transactions partition from 2030-01-01" in result.output and hint in result.output
    assert "Traceback" not in result.output and "Flow run" not in result.output


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["promote", "--version", "999"], "has no version 999: pick one listed in the MLflow UI"),
        (["rollback"], "nothing to roll back to (use `inferloop promote --version N`"),
    ],
)
def test_a_version_the_registry_lacks_fails_before_any_flow_starts(workdir, no_flows, command, message):
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert message in result.output.replace("\n", " ")
    assert "Traceback" not in result.output and "Flow run" not in result.output


def import_into_lake(source) -> object:
    return CliRunner().invoke(
        app, ["data", "import", "--spec", "datasets/elec2.yaml", "--source", str(source)]
    )


def test_data_import_shows_rows_in_written_and_quarantined(workdir):
    result = import_into_lake(write_elec2_like_csv(workdir / "electricity.csv", days=3))
    assert result.exit_code == 0, result.output
    counts = dict(re.findall(r"│ (in|written|quarantined)\s+│ (\d+)", result.output))
    assert counts == {"in": "144", "written": "140", "quarantined": "4"}
    assert "3 days, 1996-05-07..1996-05-09" in result.output and "class: missing" in result.output
    assert len(list((workdir / "lake" / "elec2").glob("date=*/part-import.parquet"))) == 3


def test_data_import_of_a_missing_file_says_what_to_do(workdir):
    result = import_into_lake(workdir / "nope.csv")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "does not exist: point --source at a CSV or parquet file" in " ".join(result.output.split())


def test_data_import_with_no_usable_row_fails(workdir):
    source = workdir / "electricity.csv"
    write_elec2_like_csv(source, days=1)
    source.write_text(source.read_text().replace(",UP\n", ",SIDEWAYS\n").replace(",DOWN\n", ",SIDEWAYS\n"))
    result = import_into_lake(source)
    assert result.exit_code == 1 and "No row was imported" in result.output
    assert not (workdir / "lake" / "elec2").exists()


def test_expectations_suggest_writes_the_suites_and_prints_what_to_review(workdir, monkeypatch):
    project = workdir / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", project)
    monkeypatch.setenv("INFERLOOP_EXPECTATIONS_DIR", str(project))
    CliRunner().invoke(app, ["data", "generate", "--days", "2", "--rows-per-day", "200"])
    result = CliRunner().invoke(app, ["expectations", "suggest", "--from", "2026-01-01..2026-01-02"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"Proposed {project}/gx/expectations/transactions_training.json" in output
    assert "- rows: At least 1 row (an empty partition is refused)" in output
    assert "set min_value to 0 where the column's meaning forbids negatives" in output


def test_expectations_suggest_into_an_empty_folder_makes_its_gx_project_and_the_gate_uses_it(
    workdir, monkeypatch
):
    project = workdir / "my-feed-expectations"  # a new feed's own, not this repository's
    monkeypatch.setenv("INFERLOOP_EXPECTATIONS_DIR", str(project))
    CliRunner().invoke(app, ["data", "generate", "--days", "3", "--rows-per-day", "200"])
    result = CliRunner().invoke(app, ["expectations", "suggest", "--from", "2026-01-01..2026-01-02"])
    assert result.exit_code == 0, result.output
    assert (project / "gx" / "expectations" / "transactions_inference.json").exists()
    scored = CliRunner().invoke(app, ["validate", "--date", "2026-01-03"])
    assert scored.exit_code == 0, scored.output


def test_status_shows_the_stack_profile_and_the_aliases(workdir, prefect_harness, mlflow_server, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", "status-without-versions")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Stack \((local|prod)\s+profile\)", result.output)  # the title wraps
    assert "status-without-versions@champion: none" in result.output
