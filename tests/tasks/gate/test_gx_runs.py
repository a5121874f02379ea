"""GX's run on a sample in a helper process decides as it does in this process; the suite's
definitions read from its file are what GX reads (tasks/gate/gx_runs.py, expectations.py)."""

import logging
import os
import shutil
import signal
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

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
            report = gated(lake)
        assert gx_runs._helper is None
    assert "GX runs in this process" in caplog.text
    assert report.to_dict() == expected.to_dict()


def test_an_error_in_the_helper_reaches_the_caller_as_it_would_here(lake):
    _, settings = lake
    elsewhere = settings.with_overrides(expectations_dir=REPO_ROOT / "datasets")  # no GX project
    with gx_runs.gx_helper(), pytest.raises(Exception, match="INFERLOOP_EXPECTATIONS_DIR"):
        gx_runs.validate(elsewhere.gate, settings.dataset, "inference", pd.DataFrame(), {})


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
