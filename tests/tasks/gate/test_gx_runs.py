"""GX's run on a sample in a helper process decides as it does in this process; the suite's
definitions read from its file are what GX reads (tasks/gate/gx_runs.py, expectations.py)."""

import json
import logging
import os
import shutil
import signal
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from inferloop.core.errors import InferloopError
from inferloop.core.settings import REPO_ROOT
from inferloop.core.storage import Storage
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.gate import gx_runs
from inferloop.tasks.gate.expectations import SuiteMissingError, open_gx_context, suite_definitions
from inferloop.tasks.gate.partition_gate import validate_partition

DAY = date(2026, 1, 1)


@pytest.fixture
def lake(settings, tmp_path):
    storage = Storage((tmp_path / "lake").as_uri())
    frame = generate_day(GeneratorConfig(rows_per_day=1_000), 0)[0]
    frame.loc[:9, "amount"] = -1.0  # quarantined by a row check, counted by GX on its sample
    storage.write_table(f"transactions/date={DAY}/part-0.parquet", pa.Table.from_pandas(frame))
    return storage, settings


def gated(lake):
    storage, settings = lake
    return validate_partition.fn(storage, settings.dataset, "inference", DAY, settings.gate, settings.scoring)


def test_gx_in_the_helper_process_decides_as_in_this_process(lake):
    here = gated(lake)
    with gx_runs.gx_helper():
        helper = gx_runs._helper._process
        assert helper.is_alive()
        there = gated(lake)
    assert not helper.is_alive() and helper.exitcode == 0  # left at once, when the command was done
    assert there.to_dict() == here.to_dict()
    assert there.rows_quarantined == 10 and there.data_docs_uri.endswith("index.html")
    assert {e.name: e.gx_unexpected_count for e in there.expectations}[
        "expect_column_values_to_be_between(amount)"
    ] == 10
    copies = Path(lake[1].gate.gx_runtime_dir).glob("project-*/.owner")
    assert not [p for p in copies if str(helper.pid) in p.read_text()]  # its copy of the project is gone


def test_a_helper_that_died_leaves_gx_to_this_process(lake, caplog):
    expected = gated(lake)
    with gx_runs.gx_helper():
        process = gx_runs._helper._process
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        with caplog.at_level(logging.WARNING, logger=gx_runs.__name__):
            report, again = gated(lake), gated(lake)
    assert caplog.text.count("GX runs in this process") == 1  # said once
    assert report.to_dict() == expected.to_dict() == again.to_dict()


def test_an_error_in_the_helper_reaches_the_caller_as_it_would_here(lake):
    _, settings = lake
    elsewhere = settings.with_overrides(expectations_dir=REPO_ROOT / "datasets")  # no GX project
    with gx_runs.gx_helper():
        with pytest.raises(InferloopError, match="INFERLOOP_EXPECTATIONS_DIR"):
            gx_runs.validate(elsewhere.gate, settings.dataset, "inference", pd.DataFrame(), {})
        assert gx_runs._helper._process.is_alive() and not gx_runs._helper._broken  # raised there


@pytest.mark.parametrize("suite", sorted((REPO_ROOT / "expectations" / "gx" / "expectations").glob("*.json")))
def test_a_committed_suite_read_from_its_file_is_what_gx_reads(settings, suite):
    dataset, purpose = suite.stem.rsplit("_", 1)
    spec = settings.dataset.model_copy(update={"name": dataset})
    read = [(d.type, d.kwargs, d.meta) for d in suite_definitions(settings.gate, spec, purpose)]
    configurations = open_gx_context(settings.gate).suites.get(suite.stem).expectation_configurations
    assert read == [(c.type, c.kwargs, c.meta) for c in configurations]


def test_a_suite_file_that_is_not_a_suite_is_a_clear_error(settings, tmp_path):
    shutil.copytree(REPO_ROOT / "expectations" / "gx", tmp_path / "gx")
    (tmp_path / "gx" / "expectations" / "transactions_inference.json").write_text('{"expectations": 3')
    mine = settings.with_overrides(expectations_dir=tmp_path)
    with pytest.raises(Exception, match=r"transactions_inference.json is not a GX suite .* restore it"):
        suite_definitions(mine.gate, settings.dataset, "inference")
    (tmp_path / "gx" / "expectations" / "transactions_inference.json").unlink()
    with pytest.raises(SuiteMissingError, match="inferloop expectations suggest"):
        suite_definitions(mine.gate, settings.dataset, "inference")


def edited_lake(lake, tmp_path):
    """`lake` with settings pointing at a copy of the committed GX project, to edit."""
    storage, settings = lake
    shutil.copytree(REPO_ROOT / "expectations" / "gx", tmp_path / "mine" / "gx")
    return (storage, settings.with_overrides(expectations_dir=tmp_path / "mine")), tmp_path / "mine"


def drop_amount_range(project: Path) -> None:
    path = project / "gx" / "expectations" / "transactions_inference.json"
    suite = json.loads(path.read_text())
    suite["expectations"] = [
        e
        for e in suite["expectations"]
        if (e["type"], e["kwargs"].get("column")) != ("expect_column_values_to_be_between", "amount")
    ]
    path.write_text(json.dumps(suite))


def test_a_suite_committed_while_the_process_runs_is_used_by_the_next_partition(lake, tmp_path):
    """A worker runs for days: its private copy of the project follows the committed one."""
    lake, project = edited_lake(lake, tmp_path)
    assert gated(lake).rows_quarantined == 10
    drop_amount_range(project)
    after = gated(lake)
    assert after.rows_quarantined == 0
    assert "expect_column_values_to_be_between(amount)" not in {e.name for e in after.expectations}


def test_a_suite_changed_between_reading_it_and_running_gx_is_a_clear_error(lake, tmp_path):
    from inferloop.tasks.gate.partition_gate import PartitionGate

    (storage, settings), project = edited_lake(lake, tmp_path)
    gate = PartitionGate(storage, settings.dataset, "inference", DAY, settings.gate)
    drop_amount_range(project)
    table = storage.read_table(f"transactions/date={DAY}")
    with pytest.raises(InferloopError, match=r"changed while this partition was gated.*run the command"):
        gate.check(table)
