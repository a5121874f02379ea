"""Model cards (tasks/model/model_card.py): rendered from what the registry records, written at
registration and rewritten, with the whole decision history, after each recorded decision; on
the session's real MLflow server."""

import json
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag

from inferloop.core.settings import load_settings
from inferloop.tasks.model.model_card import (
    CARD_TAG,
    ModelCard,
    card_path,
    history_path,
    model_card_markdown,
    write_model_card,
)
from inferloop.tasks.promotion.decision import GateCheck, PromotionDecision
from inferloop.tasks.promotion.record import record_decision
from inferloop.tasks.report_tables import promotion_table

HASH = "ab12" * 16


def card(**changes) -> ModelCard:
    fields = {
        "name": "fraud",
        "version": "2",
        "run_id": "r2",
        "registered_at": "2026-01-08T00:00:00+00:00",
        "aliases": ["challenger"],
        "params": {"window_start": "2026-01-01", "window_end": "2026-01-07", "train_rows": "900"},
        "metrics": {"holdout_roc_auc": 0.81, "gate_rows_in": 1000.0, "gate_rows_quarantined": 3.0},
        "run_tags": {"inferloop.data_gate": "accepted", "inferloop.data_hash": HASH},
        "inputs": [{"name": "transactions", "digest": HASH[:32], "source": "{}", "context": "training"}],
        "gate_reports": [
            {
                "partition_date": "2026-01-01",
                "suite": "transactions_training",
                "decision": "accepted",
                "rows_in": 1000,
                "rows_quarantined": 3,
                "reasons": [],
            }
        ],
        "champion_at_registration": "1",
        "champion_metrics_at_registration": {"roc_auc": 0.75},
        "decisions": [],
        "hindsight": None,
    }
    return ModelCard(**(fields | changes))


def test_a_card_says_what_data_which_gate_which_metrics_and_no_decision_yet():
    text = model_card_markdown(card())
    assert text.startswith("# Model card: fraud v2\n")
    assert "| window | 2026-01-01..2026-01-07 |" in text
    assert f"`{HASH}`" in text  # the content hash
    assert f"digest `{HASH[:32]}`" in text  # the logged MLflow input
    assert "Training data accepted: 1000 rows in, 3 quarantined." in text
    assert "| 2026-01-01 | transactions_training | accepted | 1000 | 3 | - |" in text
    assert "| roc_auc | 0.8100 | 0.7500 |" in text  # vs the champion when registered
    assert "No decision yet." in text
    assert "None checked for this version." in text
    assert "decision threshold" not in text  # registered before versions recorded one


def test_a_card_names_the_versions_own_decision_threshold():
    params = {"decision_threshold": "0.054", "threshold_choice": "label rate"}
    text = model_card_markdown(card(params=params))
    assert "this version's is 0.054 (label rate)" in text


def test_decisions_are_listed_oldest_first_with_who_when_why_and_the_same_rows_comparison():
    decisions = [
        {
            "decided_at": "2026-01-09T01:00:00+00:00",
            "verdict": "reject",
            "mode": "auto",
            "decided_by": "promote flow",
            "reason": "beats_champion: | no",
            "champion_before": "1",
            "evaluation": "days after the window: 2026-01-08..2026-01-08",
            "challenger_metrics": {"roc_auc": 0.70},
            "champion_metrics": {"roc_auc": 0.72},
        },
        {
            "decided_at": "2026-01-10T01:00:00+00:00",
            "verdict": "promote",
            "mode": "manual",
            "decided_by": "cli:alice",
            "reason": "manual by hand",
            "champion_before": "1",
            "evaluation": "holdout",
            "challenger_metrics": {"roc_auc": 0.81},
            "champion_metrics": None,
        },
    ]
    text = model_card_markdown(
        card(
            decisions=decisions,
            optimised={"runtime": "treelite", "parity": "max |diff| 1e-7"},
            hindsight={"champion_version": "2", "replaced_version": "1", "verdict": "worse", "rows": 400},
        )
    )
    history = text[text.index("## Decision history") :]
    assert history.index("| 2026-01-09T01:00:00+00:00 | reject | auto | promote flow | v1 |") < history.index(
        "| 2026-01-10T01:00:00+00:00 | promote | manual | cli:alice | v1 | manual by hand |"
    )
    assert "beats_champion: \\| no" in history  # a `|` in a reason does not break the table
    assert "Against the champion of the time, v1, on the same rows" in text
    assert "| roc_auc | 0.7000 | 0.7200 |" in text
    assert "| parity | max \\|diff\\| 1e-7 |" in text and "| runtime | treelite |" in text
    assert "Against v1, the version it replaced: worse on 400 labelled rows." in text


@pytest.fixture
def registry(prefect_harness, mlflow_server, monkeypatch):
    """v1 (@champion) and v2 (@challenger) of a fresh model, each on a run that records what
    training records: window params, holdout and gate metrics, lineage tags, the gate's
    reports and the training input (no weights: the card never loads a model)."""
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", f"card-{uuid.uuid4().hex[:8]}")
    settings = load_settings()
    client = MlflowClient(mlflow_server)
    name = settings.registry.model_name
    client.create_registered_model(name)
    experiment = client.create_experiment(f"card-{uuid.uuid4().hex[:8]}")
    for version, auc in (("1", 0.75), ("2", 0.81)):
        run = client.create_run(experiment).info.run_id
        client.log_batch(
            run,
            metrics=[Metric("holdout_roc_auc", auc, 0, 0), Metric("gate_rows_in", 1000, 0, 0)],
            params=[Param("window_start", f"2026-01-0{version}"), Param("window_end", "2026-01-07")],
            tags=[RunTag("inferloop.data_gate", "accepted"), RunTag("inferloop.data_hash", HASH)],
        )
        client.log_dict(run, {"reports": [{"partition_date": "2026-01-07", "decision": "accepted"}]},
                        "data_quality/validation_reports.json")  # fmt: skip
        dataset = pd.DataFrame({"x": [1, 2]})
        import mlflow.data

        logged = mlflow.data.from_pandas(dataset, name=f"window v{version}", digest=f"digest{version}")
        client.log_inputs(
            run, [DatasetInput(logged._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])]
        )
        client.create_model_version(name, f"runs:/{run}/model", run_id=run)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    return settings, client, name


def read_card(client: MlflowClient, name: str, version: str) -> str:
    run_id = client.get_model_version(name, version).run_id
    with tempfile.TemporaryDirectory() as scratch:
        return Path(client.download_artifacts(run_id, card_path(name, version), scratch)).read_text()


def decision(name: str, version: str, champion: str | None, verdict: str, mode: str, who: str):
    return PromotionDecision(
        model_name=name,
        challenger_version=version,
        champion_version=champion,
        challenger_metrics={"roc_auc": 0.8123},
        champion_metrics={"roc_auc": 0.7456} if mode == "auto" else None,
        checks=[GateCheck("beats_champion", verdict != "reject", "ROC AUC 0.8123 vs 0.7456")],
        verdict=verdict,
        reason=f"{verdict} because {who} said so",
        mode=mode,
        evaluation="the requested window: 2026-01-08..2026-01-09",
        decided_by=who,
    )


def test_a_card_is_written_at_registration_and_rewritten_with_each_decision(registry):
    settings, client, name = registry

    uri = write_model_card(settings.registry, name, "2")  # as the train flow does on registration
    tags = client.get_model_version(name, "2").tags
    assert (
        tags[CARD_TAG] == uri == f"runs:/{client.get_model_version(name, '2').run_id}/{card_path(name, '2')}"
    )
    assert tags["inferloop.champion_at_registration"] == "1"
    text = read_card(client, name, "2")
    assert "| window | 2026-01-02..2026-01-07 |" in text
    assert f"`{HASH}`" in text and "digest `digest2`" in text
    assert "| 2026-01-07 | - | accepted |" in text
    assert "| roc_auc | 0.8100 | 0.7500 |" in text  # its holdout vs v1's, the champion of the time
    assert "No decision yet." in text and "@challenger" in text

    promoted = record_decision(settings.registry, decision(name, "2", "1", "promote", "auto", "promote flow"))
    assert promoted.model_card == uri
    assert f"Model card: {uri}" in promotion_table(promoted).caption  # linked from the promotion artifact
    text = read_card(client, name, "2")
    assert "| promote | auto | promote flow | v1 | promote because promote flow said so |" in text
    assert "Against the champion of the time, v1, on the same rows" in text
    assert "| roc_auc | 0.8123 | 0.7456 |" in text
    assert "@champion" in text

    client.set_model_version_tag(name, "2", "inferloop.optimised.parity", "passed: max abs diff 2e-07")
    record_decision(settings.registry, decision(name, "1", "2", "rollback", "rollback", "cli:bob"))
    record_decision(settings.registry, decision(name, "2", "1", "promote", "manual", "cli:alice"))
    text = read_card(client, name, "2")
    history = text[text.index("## Decision history") :]
    assert history.index("| promote flow |") < history.index("| cli:alice |")  # the whole history
    assert "| parity | passed: max abs diff 2e-07 |" in text
    rolled_back_to = read_card(client, name, "1")
    assert "| rollback | rollback | cli:bob | v2 | rollback because cli:bob said so |" in rolled_back_to
    stored = client.get_model_version(name, "2").run_id
    with tempfile.TemporaryDirectory() as scratch:
        history_file = Path(client.download_artifacts(stored, history_path(name, "2"), scratch))
        assert [d["decided_by"] for d in json.loads(history_file.read_text())["decisions"]] == [
            "promote flow",
            "cli:alice",
        ]
