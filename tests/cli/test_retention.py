"""`inferloop retention [--dry-run]`: a table of what goes (or went); bad settings in one line."""

from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core import catalog
from inferloop.core.storage import Storage
from tests.tasks.data.test_retention import DAYS, MODEL, files, write_lake


def test_dry_run_prints_what_would_go_and_the_run_deletes_it(prefect_harness, workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_RETAIN_ONLINE_DAYS", "2")
    lake = Storage((workdir / "lake").as_uri())
    write_lake(lake)
    before = files(lake)

    dry = CliRunner().invoke(app, ["retention", "--dry-run", "--as-of", "2026-01-07"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 4 partition(s) (dry run)" in dry.output
    assert "online" in dry.output and "2026-01-01" in dry.output
    assert files(lake) == before

    run = CliRunner().invoke(app, ["retention", "--as-of", "2026-01-07"])
    assert run.exit_code == 0, run.output
    assert "deleted 4 partition(s)" in run.output
    assert [lake.exists(catalog.online_predictions(MODEL, day)) for day in DAYS] == [False] * 4 + [True] * 2


def test_a_negative_retention_is_one_line_naming_the_variable(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_RETAIN_FEATURES_DAYS", "-1")
    result = CliRunner().invoke(app, ["retention", "--dry-run"])
    assert result.exit_code == 1
    assert "INFERLOOP_RETAIN_FEATURES_DAYS" in result.output and "at least 1" in result.output
    assert "Traceback" not in result.output


def test_a_retention_shorter_than_the_training_window_is_refused_before_the_flow(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_RETAIN_FEATURES_DAYS", "3")
    result = CliRunner().invoke(app, ["retention"])
    assert result.exit_code == 1
    assert "INFERLOOP_RETAIN_FEATURES_DAYS=3 is shorter than INFERLOOP_TRAIN_WINDOW_DAYS=7" in result.output
    assert "Traceback" not in result.output
