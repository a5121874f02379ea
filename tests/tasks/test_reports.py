"""Each report object as its one `ReportTable` (tasks/report_tables.py) carries what a person
needs (verdict, reason, counts, where), and tasks/reports.py publishes exactly those tables as
Prefect artifacts under the keys the UI and scripts look for."""

import json
import uuid
from datetime import date
from types import SimpleNamespace

import pytest

from inferloop.core.registry import ModelVersionRef
from inferloop.tasks import report_tables
from inferloop.tasks.data.importing import ImportSummary
from inferloop.tasks.gate.validation import ExpectationOutcome, ValidationReport
from inferloop.tasks.monitoring.daily_report import MonitoringReport
from inferloop.tasks.monitoring.drift import FeatureDrift
from inferloop.tasks.monitoring.performance import PerformanceSnapshot
from inferloop.tasks.monitoring.replay import ReplayDay, ReplaySummary
from inferloop.tasks.monitoring.retrain_policy import RetrainDecision
from inferloop.tasks.promotion.decision import GateCheck, PromotionDecision
from inferloop.tasks.reports import markdown, promotion_markdown
from inferloop.tasks.scoring.batch_scoring import ScoringManifest

MODEL = "transactions-classifier"


MISSING = "missing columns ['amount']"


def gate_report(refused: bool, suite: str = "transactions_inference") -> ValidationReport:
    return ValidationReport(
        dataset="transactions",
        suite=suite,
        partition_date="2026-01-05",
        rows_in=2_000,
        rows_passed=0 if refused else 1_990,
        rows_quarantined=0 if refused else 10,
        rows_refused=2_000 if refused else 0,
        decision="refused" if refused else "accepted",
        reasons=[MISSING] if refused else [],
        expectations=[
            ExpectationOutcome("columns_match", "critical", not refused, 0, None, MISSING),
            ExpectationOutcome("merchant_category_not_null", "row", True, 10, 3, "10 nulls | 0.5%"),
            ExpectationOutcome("transaction_id_unique", "critical", True, 0, 0, ""),
        ],
        quarantine_uri=None if refused else "file:///lake/quarantine/transactions_inference/date=2026-01-05",
        data_docs_uri="file:///gx/data_docs/index.html",
    )


def rejection(model: str = MODEL) -> PromotionDecision:
    return PromotionDecision(
        model_name=model,
        challenger_version="3",
        champion_version="2",
        challenger_metrics={"roc_auc": 0.91, "pr_auc": 0.4},
        champion_metrics={"roc_auc": 0.9},
        checks=[
            GateCheck("min_roc_auc", True, "0.9100 >= 0.7000"),
            GateCheck("beats_champion", False, "+0.0100 < +0.0200"),
        ],
        verdict="reject",
        reason="challenger does not beat the champion by 0.02",
        mode="auto",
        evaluation="2026-01-08..2026-01-10, 3000 labelled rows",
        decided_at="2026-01-11T00:00:00+00:00",
    )


def manifest(day: str, reused: bool = False, dataset: str = "transactions") -> ScoringManifest:
    return ScoringManifest(
        dataset=dataset,
        partition_date=day,
        model_name=MODEL,
        model_version="2",
        model_run_id="run-2",
        role="champion",
        flow_run_id="flow-run-1",
        input_uri=f"file:///lake/transactions/date={day}",
        output_uri=f"file:///lake/predictions/model={MODEL}/version=2/date={day}",
        rows_in=1_000,
        rows_scored=990,
        rows_quarantined=10,
        seconds=0.5,
        reused=reused,
    )


def monitored_day(dataset: str = "transactions") -> MonitoringReport:
    return MonitoringReport(
        dataset=dataset,
        model_name=MODEL,
        model_version="2",
        day="2026-01-10",
        rows_scored=1_000,
        scored_by="2",
        drift_verdict="drift",
        prediction_psi=0.05,
        drift=[
            FeatureDrift("amount", "numeric", 1_000, 0.31234, ks=0.2, ks_pvalue=0.001, flagged=True),
            FeatureDrift("merchant_category", "categorical", 1_000, 0.01, unseen_share=0.02),
        ],
        day_performance=PerformanceSnapshot("2", "2026-01-09", "2026-01-09", 800, {"roc_auc": 0.8123}),
        rolling_performance=PerformanceSnapshot("2", "2026-01-03", "2026-01-09", 5_600, {"roc_auc": 0.85}),
        breaches=["amount PSI 0.312 > 0.2"],
    )


SUPPRESSED = RetrainDecision(
    day="2026-01-10",
    action="suppressed",
    reasons=["amount PSI 0.312 > 0.2"],
    suppressed_because="cooldown: retrained on 2026-01-09",
)
TRAINED = ModelVersionRef(MODEL, "3", "run-3", "challenger")


def test_a_refused_gate_shows_the_verdict_the_reason_and_the_failing_expectation():
    table = report_tables.validation_table(gate_report(refused=True))
    assert "REFUSED" in table.title and "2000 in" in table.title and "2000 refused" in table.title
    assert any("missing columns ['amount']" in section for section in table.sections)
    rows = {row[0]: row for row in table.rows}
    assert rows["columns_match"][2] == "FAIL"
    assert rows["merchant_category_not_null"][2:4] == ("pass", 10)  # passed, but quarantined rows
    assert "transaction_id_unique" not in rows  # clean expectations stay out of the summary
    assert "Quarantine: none" in table.caption and "data_docs/index.html" in table.caption


def test_an_accepted_gate_says_where_the_quarantined_rows_are():
    table = report_tables.validation_table(gate_report(refused=False))
    assert "ACCEPTED" in table.title and "10 quarantined" in table.title
    assert "quarantine/transactions_inference/date=2026-01-05" in table.caption


def test_the_expectations_table_lists_every_expectation_with_gx_counts():
    records = report_tables.expectations_table(gate_report(refused=True)).records()
    assert [r["expectation"] for r in records] == [
        "columns_match",
        "merchant_category_not_null",
        "transaction_id_unique",
    ]
    assert records[0]["success"] is False and records[1]["gx_unexpected"] == 3


def test_a_promotion_decision_shows_verdict_gates_metrics_and_reason():
    table = report_tables.promotion_table(rejection())
    assert table.title.startswith("Promotion decision: REJECT") and "v3" in table.title
    assert "champion before: v2" in table.title
    assert ("beats_champion", "FAIL", "+0.0100 < +0.0200") in table.rows
    assert "challenger does not beat the champion by 0.02" in table.caption and "auto" in table.caption
    text = markdown(table)
    assert "| roc_auc | 0.9100 | 0.9000 |" in text
    assert "| pr_auc | 0.4000 | - |" in text  # a metric the champion lacks
    assert "Evaluated on 2026-01-08..2026-01-10, 3000 labelled rows." in text
    # The approval form a person reads in the Prefect UI is the same rendering.
    assert promotion_markdown(rejection()) == text


def test_scoring_rows_add_up_and_say_which_partitions_were_no_ops():
    table = report_tables.scoring_table([manifest("2026-01-08"), manifest("2026-01-09", reused=True)])
    first, second = table.records()
    assert first["rows_in"] == first["rows_scored"] + first["rows_quarantined"]
    assert (first["status"], second["status"]) == ("scored", "already scored (no-op)")
    assert first["rows_per_s"] == 1_980 and first["model_version"] == "2"
    assert first["output_uri"].endswith("/version=2/date=2026-01-08")
    assert "with transactions-classifier v2" in table.title
    assert table.caption == f"Output under file:///lake/predictions/model={MODEL}/version=V/date=D"


def test_training_shows_the_version_the_window_and_held_out_metrics():
    window = "2026-01-01..2026-01-07"
    table = report_tables.training_table(TRAINED, {"roc_auc": 0.91234}, window, 6_000, 1_000)
    assert table.title == f"Trained {MODEL} version 3 (@challenger)"
    assert table.rows == (("roc_auc", "0.9123"),)
    assert "6000 training rows, 1000 held-out rows" in table.sections[0]
    assert "run-3" in table.caption and f"models:/{MODEL}/3" in table.caption


def test_drift_marks_exactly_the_flagged_features():
    records = report_tables.drift_table(monitored_day()).records()
    flagged = {r["feature"]: r["flagged"] for r in records}
    assert flagged == {"amount": "DRIFT", "merchant_category": ""}
    assert records[0]["psi"] == 0.3123 and records[1]["ks"] is None


def test_a_pooled_drift_verdict_names_its_partitions_in_the_table_and_the_summary():
    from dataclasses import replace

    pooled = replace(
        monitored_day(),
        rows_scored=48,
        drift_verdict="measured on 5 partitions 2026-01-06..2026-01-10, 240 rows",
        drift_partitions=[f"2026-01-{d:02d}" for d in range(6, 11)],
        drift_rows=240,
    )
    window = "2026-01-06..2026-01-10"
    title = report_tables.drift_table(pooled).title
    assert title == f"Drift of 2026-01-10 pooled over {window} (240 rows) vs {MODEL} v2's training data"
    text = markdown(report_tables.monitoring_table(pooled, SUPPRESSED, "file:///lake/monitoring/d", None))
    assert f"Drift: measured on 5 partitions {window}, 240 rows; drifted features: amount" in text
    assert report_tables.drift_table(monitored_day()).title.startswith("Drift of 2026-01-10 vs ")


def test_the_monitoring_summary_carries_breaches_and_the_retrain_verdict():
    table = report_tables.monitoring_table(monitored_day(), SUPPRESSED, "file:///lake/monitoring/d", None)
    text = markdown(table)
    assert "**Retrain verdict: suppressed: cooldown: retrained on 2026-01-09**" in text
    assert "Breaches: amount PSI 0.312 > 0.2" in text and "drifted features: amount;" in text
    assert [row[0] for row in table.rows] == ["day", "rolling"]
    assert table.rows[0][3:] == (800, "roc_auc 0.812")
    assert "Chart" not in table.caption and "file:///lake/monitoring/d" in table.caption


def test_the_online_rows_get_their_own_drift_table_summary_line_and_performance_rows():
    from dataclasses import replace

    from inferloop.tasks.monitoring.online import OnlineMonitoring

    online = OnlineMonitoring(
        rows_scored=600,
        rows_by_version={"1": 100, "2": 500},
        scored_by="2",
        drift_verdict="measured",
        drift=[
            FeatureDrift("amount", "numeric", 600, 0.02),
            FeatureDrift("country", "categorical", 600, 0.4, flagged=True),
        ],
        prediction_psi=0.012345,
        day_performance=PerformanceSnapshot("2", "2026-01-09", "2026-01-09", 450, {"roc_auc": 0.7}),
    )
    report = replace(monitored_day(), online=online)
    drift = report_tables.drift_table(report, online=True)
    assert "2026-01-10's online rows" in drift.title
    assert {r["feature"]: r["flagged"] for r in drift.records()} == {"amount": "", "country": "DRIFT"}
    table = report_tables.monitoring_table(report, SUPPRESSED, "file:///lake/monitoring/d", None)
    online_line = "Online: 600 rows (v1 100, v2 500); drift: measured; drifted features: country; "
    assert online_line + "prediction PSI 0.0123." in table.sections
    assert [row[0] for row in table.rows] == ["day", "rolling", "online day"]
    assert table.rows[2][3:] == (450, "roc_auc 0.700")


def test_an_import_shows_rows_in_written_quarantined_and_each_reason():
    summary = ImportSummary(
        dataset="elec2",
        source_uri="file:///data/electricity.csv",
        source_sha256="0" * 64,
        rows_in=144,
        rows_written=140,
        rows_quarantined=4,
        days=3,
        first_day=date(1996, 5, 7),
        last_day=date(1996, 5, 9),
        features_uri="file:///lake/elec2",
        labels_uri="file:///lake/elec2_labels",
        quarantine_uri="file:///lake/quarantine/import/elec2/part-1.parquet",
        reasons={"class: missing": 4},
    )
    table = report_tables.import_table(summary)
    assert "3 days, 1996-05-07..1996-05-09" in table.title
    counts = {row[0].strip(): row[1] for row in table.rows}
    assert counts == {"in": 144, "written": 140, "quarantined": 4, "class: missing": 4}


def test_a_replay_shows_refused_days_and_the_prequential_comparison():
    summary = ReplaySummary(
        dataset="transactions",
        start="2026-01-01",
        end="2026-01-02",
        days=[
            ReplayDay("2026-01-01", "1", rows_scored=1_000),
            ReplayDay("2026-01-02", "1", refused=True, labelled_rows=900, accuracy=0.95, drifted=["amount"]),
        ],
        loop={"accuracy": 0.95, "roc_auc": 0.9},
        static={"accuracy": 0.94, "roc_auc": 0.88},
        retrains=1,
        promotions=0,
        table_uri="file:///lake/replay/transactions/2026-01-01_2026-01-02.parquet",
    )
    table = report_tables.replay_table(summary)
    assert [row[2] for row in table.rows] == [1_000, "REFUSED"]
    assert table.rows[1][5:8] == ("0.950", "", "amount")
    assert "loop 0.950 vs static 0.940" in table.caption and "1 retrain(s)" in table.caption


def test_recent_runs_are_listed_newest_first():
    runs = [SimpleNamespace(name="brave-fox", state_name="Completed", start_time="2026-01-02T00:00:00")]
    table = report_tables.recent_runs_table(runs)
    assert table.title == "Latest 1 flow runs"
    assert table.rows == (("brave-fox", "Completed", "2026-01-02T00:00:00"),)


def test_markdown_escapes_pipes_and_shows_an_empty_table_as_none():
    text = markdown(report_tables.validation_table(gate_report(refused=False)))
    assert "10 nulls \\| 0.5%" in text
    passing = gate_report(refused=False)
    passing.expectations = []
    assert "| (none) |  |  |  |  |" in markdown(report_tables.validation_table(passing))


@pytest.mark.usefixtures("prefect_harness")
def test_publication_creates_the_artifacts_the_ui_and_scripts_read():
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from inferloop.tasks import reports

    dataset = f"reports-{uuid.uuid4().hex[:8]}"  # keys of its own: the harness is shared
    suite = f"{dataset}_inference"

    @flow
    def publish_every_report() -> None:
        reports.publish_validation_report(gate_report(refused=True, suite=suite))
        reports.publish_promotion_report(rejection(model=dataset))
        reports.publish_scoring_report([manifest("2026-01-08", dataset=dataset)])
        reports.publish_scoring_report([])  # nothing scored: no artifact
        reports.publish_training_report(
            ModelVersionRef(dataset, "3", "run-3", "challenger"), {"roc_auc": 0.91}, "w", 10, 5
        )
        reports.publish_monitoring_report(monitored_day(dataset), SUPPRESSED, "file:///lake/m", None)

    state = publish_every_report(return_state=True)
    run_id = state.state_details.flow_run_id
    only_this_run = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
    with get_client(sync_client=True) as client:
        artifacts = {a.key: a for a in client.read_artifacts(artifact_filter=only_this_run)}

    kinds = {key: artifact.type for key, artifact in artifacts.items()}
    assert kinds == {
        f"validation-{dataset}-inference": "markdown",
        f"validation-{dataset}-inference-expectations": "table",
        f"promotion-{dataset}": "markdown",
        f"scoring-{dataset}": "table",
        f"training-{dataset}": "markdown",
        f"monitoring-{dataset}": "markdown",
        f"monitoring-{dataset}-drift": "table",
    }
    gate = artifacts[f"validation-{dataset}-inference"]
    assert "REFUSED" in gate.data and "missing columns ['amount']" in gate.data
    assert gate.description == "Gate refused 2026-01-05"
    assert artifacts[f"promotion-{dataset}"].data == promotion_markdown(rejection(model=dataset))
    (scored,) = json.loads(artifacts[f"scoring-{dataset}"].data)
    assert scored["status"] == "scored" and scored["output_uri"].endswith("/date=2026-01-08")
    drift = artifacts[f"monitoring-{dataset}-drift"]
    assert {row["feature"]: row["flagged"] for row in json.loads(drift.data)}["amount"] == "DRIFT"
    assert drift.description.startswith(f"Drift of 2026-01-10 vs {MODEL} v2's training data")
    assert "Retrain verdict: suppressed" in artifacts[f"monitoring-{dataset}"].data
