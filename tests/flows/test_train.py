"""The train flow: gate a labelled window, fit on what passed, register a version with its lineage;
the first version becomes @champion by a recorded bootstrap decision, later ones wait as
@challenger; a refused day means no model."""

import json
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from inferloop.core.registry import THRESHOLD_TAG
from inferloop.core.settings import load_settings
from inferloop.flows.train import train
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.validation import BatchRefusedError
from tests.flows.conftest import AFTER, BEFORE, ROWS_PER_DAY, write_feed


def test_the_first_version_becomes_champion_by_a_recorded_bootstrap_decision(pool, mlflow_server):
    client = MlflowClient(mlflow_server)
    first = pool.before
    assert first.alias == "champion"
    model = client.get_registered_model(first.name)
    assert {alias: str(v) for alias, v in model.aliases.items()} == {
        "champion": first.version,
        "challenger": pool.after.version,
    }
    decision = client.get_model_version(first.name, first.version).tags
    assert decision["inferloop.decision.mode"] == "bootstrap"
    assert decision["inferloop.decision.verdict"] == "promote"
    assert decision["inferloop.decision.champion_before"] == "none"
    holdout_auc = client.get_run(first.run_id).data.metrics["holdout_roc_auc"]
    assert json.loads(decision["inferloop.decision.challenger_metrics"])["roc_auc"] == round(holdout_auc, 5)


def test_a_later_version_waits_as_challenger_without_a_decision(pool, mlflow_server):
    client = MlflowClient(mlflow_server)
    later = pool.after
    assert later.alias == "challenger" and int(later.version) == int(pool.before.version) + 1
    assert not any(
        tag.startswith("inferloop.decision.")
        for tag in client.get_model_version(later.name, later.version).tags
    )


def test_a_version_records_its_window_gate_and_data_lineage(pool, mlflow_server):
    client = MlflowClient(mlflow_server)
    for ref, (start, end) in ((pool.before, BEFORE), (pool.after, AFTER)):  # `after`: the default window
        run = client.get_run(ref.run_id)
        assert client.get_model_version(ref.name, ref.version).run_id == ref.run_id
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert (params["window_start"], params["window_end"]) == (str(start), str(end))
        assert tags["inferloop.window"] == f"{start}..{end}"
        assert tags["inferloop.data_gate"] == "accepted"
        assert tags["inferloop.source_uri"].endswith("/lake/transactions")
        # Its decision threshold, as a version tag the refs read (roc_auc monitored: the setting's).
        version_tags = client.get_model_version(ref.name, ref.version).tags
        assert float(version_tags[THRESHOLD_TAG]) == float(params["decision_threshold"]) == 0.5
        assert params["threshold_choice"] == "fixed for this metric"
        days = (end - start).days + 1
        assert metrics["gate_rows_in"] == days * ROWS_PER_DAY
        # Trained and held out on exactly the rows the gate passed; the latest day held out.
        passed = metrics["gate_rows_in"] - metrics["gate_rows_quarantined"]
        assert int(params["train_rows"]) + int(params["holdout_rows"]) == passed
        assert int(params["holdout_rows"]) <= ROWS_PER_DAY < int(params["train_rows"])
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.dataset.digest == tags["inferloop.data_hash"][:32]
        assert dataset.dataset.name == f"transactions {start}..{end}"
        reports = json.loads(artifact_text(client, ref.run_id, "data_quality/validation_reports.json"))
        assert [r["partition_date"] for r in reports["reports"]] == [
            str(start + timedelta(days=i)) for i in range(days)
        ]


def artifact_text(client: MlflowClient, run_id: str, path: str) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        return Path(client.download_artifacts(run_id, path, scratch)).read_text()


def test_a_refused_day_in_the_window_means_no_model(lake):
    config = GeneratorConfig(
        scenario="quality_faults", days=3, rows_per_day=ROWS_PER_DAY, renamed_column_days=(2,)
    )
    days = write_feed(config)

    with pytest.raises(BatchRefusedError, match=r"2026-01-03.*missing columns \['amount'\]"):
        train(start=days[0], end=days[2])
    with pytest.raises(MlflowException) as missing:
        MlflowClient(lake).get_registered_model(load_settings().registry.model_name)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_window_cut_to_too_few_rows_takes_back_the_newest_earlier_days_and_an_empty_one_trains_nothing(
    lake, feed, monkeypatch
):
    from inferloop.tasks.model.training import TrainingDataError

    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "5")
    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_ROWS", "0")  # the minimum alone widens the window here
    monkeypatch.setenv("INFERLOOP_MIN_TRAIN_ROWS", str(3 * ROWS_PER_DAY))
    end = feed[5]
    # Cut at a change two days before the end: 2 days of rows, fewer than the 3 days' worth needed.
    ref = train(start=end - timedelta(days=1), end=end)
    client = MlflowClient(load_settings().registry.tracking_uri)
    params = client.get_run(ref.run_id).data.params
    assert (params["window_start"], params["window_end"]) == (str(end - timedelta(days=2)), str(end))

    monkeypatch.setenv("INFERLOOP_MIN_TRAIN_ROWS", str(6 * ROWS_PER_DAY))
    with pytest.raises(TrainingDataError, match=r"fewer than INFERLOOP_MIN_TRAIN_ROWS=3000: waiting"):
        train(end=feed[4])  # the feed's first 5 days: nothing earlier to take back


def test_small_partitions_widen_the_window_until_promotion_has_evidence_and_gaps_are_skipped(
    lake, feed, monkeypatch
):
    """Partitions of 500 rows and a holdout that needs 1,200: the 4-day window takes back earlier
    days (skipping a day the feed does not have) until half of it can be held out with 1,200."""
    import shutil

    from inferloop.core import catalog
    from inferloop.core.storage import lake_storage

    monkeypatch.setenv("INFERLOOP_TRAIN_WINDOW_DAYS", "4")
    monkeypatch.setenv("INFERLOOP_MIN_HOLDOUT_ROWS", str(1200))
    settings = load_settings()
    gap = lake_storage(settings.lake).path(catalog.features(settings.dataset.name, feed[5]))
    shutil.rmtree(gap)  # a day with no rows: a gap in the feed, not an error

    ref = train(end=feed[8])
    params = MlflowClient(settings.registry.tracking_uri).get_run(ref.run_id).data.params
    # feed[5..8] held 2,000 rows with 3 days present: held out at most 1 (500 rows). Six partitions
    # (feed[2..8] without feed[5]) hold out 3 (1,500 rows >= 1,200).
    assert (params["window_start"], params["window_end"]) == (str(feed[2]), str(feed[8]))
    assert int(params["holdout_rows"]) == 3 * ROWS_PER_DAY


def test_a_default_window_longer_than_the_feed_starts_at_its_first_day(lake, feed):
    ref = train(end=feed[3])  # train_window_days=7 reaches before the feed's first day
    params = MlflowClient(load_settings().registry.tracking_uri).get_run(ref.run_id).data.params
    assert (params["window_start"], params["window_end"]) == (str(feed[0]), str(feed[3]))
