import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferloop.cli import app

INFERLOOP = str(Path(sys.executable).parent / "inferloop")


def test_help_is_fast_because_heavy_imports_are_lazy():
    code = (
        "import sys, inferloop.cli; heavy = {'prefect', 'mlflow', 'great_expectations', "
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
