"""batch_inference's progress and summary: a progress artifact that advances per partition, the
same count for the CLI's progress bar, and a final table of rows, throughput, version and output."""

import json
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core.periods import Partitioning
from tests.flows.conftest import ROWS_PER_DAY


def run_artifacts(flow_run_id, kind: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType

    only_this_run = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), type=ArtifactFilterType(any_=[kind])
    )
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=only_this_run)


def test_a_backfill_reports_progress_per_partition_and_ends_with_a_summary_table(champion):
    from inferloop.flows.batch_inference import batch_inference
    from inferloop.tasks.reports import listening_to_progress

    seen = []
    with listening_to_progress(lambda done, total: seen.append((done, total))):
        state = batch_inference(partition_date=champion[0], end_date=champion[-1], return_state=True)
    manifests = state.result()
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]

    run_id = state.state_details.flow_run_id
    (progress,) = run_artifacts(run_id, "progress")
    assert progress.key == "scoring-progress-transactions"
    assert float(progress.data) == 100.0
    assert f"{champion[0]}..{champion[-1]}: 3 partitions" in progress.description

    (summary,) = [a for a in run_artifacts(run_id, "table") if a.key == "scoring-transactions"]
    rows = json.loads(summary.data)
    assert [row["date"] for row in rows] == [str(day) for day in champion]
    for row, manifest in zip(rows, manifests, strict=True):
        assert row["rows_scored"] == manifest.rows_scored == ROWS_PER_DAY - row["rows_quarantined"]
        assert row["rows_per_s"] > 0
        assert row["model_version"] == manifest.model_version
        assert row["output_uri"] == manifest.output_uri and "/date=" in row["output_uri"]


def test_infer_shows_a_progress_bar_over_the_partitions(champion):
    result = CliRunner().invoke(app, ["infer", "--from", str(champion[0]), "--to", str(champion[-1])])
    assert result.exit_code == 0, result.output
    assert "Scoring partitions" in result.output and "3/3" in result.output
    # The table after the bar: one row per partition (the middle day appears nowhere else).
    assert all(str(day) in result.output for day in champion)


def test_a_rerun_of_scored_partitions_loads_no_model(champion, monkeypatch):
    import inferloop.flows.batch_inference as module

    first = module.batch_inference(partition_date=champion[0], end_date=champion[-1])
    loaded = []
    monkeypatch.setattr(module, "load_scoring_model", lambda settings, ref, fallback: loaded.append(ref))
    again = module.batch_inference(partition_date=champion[0], end_date=champion[-1])
    assert loaded == []
    assert all(m.reused for m in again)
    assert [m.rows_scored for m in again] == [m.rows_scored for m in first]


@pytest.mark.parametrize(
    ("unit", "previous"),
    [
        ("hour", datetime(2026, 3, 2, 1)),
        ("day", date(2026, 3, 1)),
        ("week", date(2026, 2, 23)),  # the run starts on Monday 2026-03-02
        ("month", date(2026, 2, 1)),
    ],
)
def test_a_scheduled_run_takes_the_partition_before_the_one_it_starts_in(monkeypatch, unit, previous):
    from inferloop.flows import batch_inference

    scheduled = datetime(2026, 3, 2, 3, 30, tzinfo=timezone(timedelta(hours=1)))  # 02:30 UTC
    monkeypatch.setattr(batch_inference, "flow_run", SimpleNamespace(scheduled_start_time=scheduled))
    assert batch_inference.logical_partition(Partitioning(unit)) == previous
    given = date(2026, 3, 18)  # any day of a partition names it
    assert batch_inference.logical_partition(Partitioning(unit), given) == Partitioning(unit).floor(given)
