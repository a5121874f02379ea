"""`inferloop expectations suggest` (tasks/gate/suggest.py): suites proposed from a reference
window are written into the project for review, and accept the window they came from."""

import shutil
from datetime import timedelta

import pytest

from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import MissingDataError, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.partition_gate import validate_partition
from inferloop.tasks.gate.suggest import propose_suites


@pytest.fixture
def proposal_setup(settings, tmp_path):
    project = tmp_path / "expectations"
    shutil.copytree(settings.gate.expectations_dir, project)
    for suite in (project / "gx" / "expectations").glob("transactions_*.json"):
        suite.unlink()  # a dataset with no suites yet
    settings = settings.with_overrides(expectations_dir=project)
    storage = lake_storage(settings.lake)
    days = write_synthetic_feed.fn(storage, settings.dataset, GeneratorConfig(days=3, rows_per_day=500))
    return settings, storage, days, project


def test_both_suites_are_written_into_the_project_and_accept_their_window(proposal_setup):
    settings, storage, days, project = proposal_setup
    paths = propose_suites(storage, settings.dataset, days[0], days[1], settings)
    assert paths == [
        project / "gx" / "expectations" / "transactions_training.json",
        project / "gx" / "expectations" / "transactions_inference.json",
    ]
    assert all(path.exists() for path in paths)
    for purpose in ("training", "inference"):
        report = validate_partition.fn(
            storage, settings.dataset, purpose, days[1], settings.gate, settings.scoring
        )
        assert (report.decision, report.rows_quarantined) == ("accepted", 0), report.reasons


def test_a_window_outside_the_lake_is_a_clear_error(proposal_setup):
    settings, storage, days, _ = proposal_setup
    later = days[-1] + timedelta(days=5)
    with pytest.raises(MissingDataError, match=f"No transactions partition for {later}"):
        propose_suites(storage, settings.dataset, later, later, settings)
