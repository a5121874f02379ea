"""Run reports as Prefect artifacts: the same objects the CLI prints, rendered for the UI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

if TYPE_CHECKING:  # for annotations only: scoring must not import monitoring (scipy.stats, ~0.6 s)
    from inferloop.tasks.gate.validation import ValidationReport
    from inferloop.tasks.model.registry import ModelVersionRef
    from inferloop.tasks.monitoring.daily_report import MonitoringReport
    from inferloop.tasks.monitoring.retrain_policy import RetrainDecision
    from inferloop.tasks.promotion.decision import PromotionDecision
    from inferloop.tasks.scoring.batch_scoring import ScoringManifest


def _artifact_key(text: str) -> str:
    # Prefect keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def publish_training_report(
    ref: ModelVersionRef, metrics: dict[str, float], window: str, train_rows: int, holdout_rows: int
) -> None:
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    create_markdown_artifact(
        key=_artifact_key(f"training-{ref.name}"),
        description=f"Training of {ref.name} v{ref.version}",
        markdown=(
            f"# Trained {ref.name} version {ref.version} (@{ref.alias})\n\n"
            f"Window {window}: {train_rows} training rows, {holdout_rows} held-out rows.\n\n"
            f"| holdout metric | value |\n|---|---|\n{rows}\n\n"
            f"MLflow run `{ref.run_id}`; model URI `{ref.uri}`.\n"
        ),
    )


ProgressListener = Callable[[int, int], None]  # (partitions done, partitions in the run)
_progress_listeners: list[ProgressListener] = []


@contextmanager
def listening_to_progress(listener: ProgressListener) -> Iterator[None]:
    """Tell `listener` how far flow runs in this process are (the CLI draws its progress bar)."""
    _progress_listeners.append(listener)
    try:
        yield
    finally:
        _progress_listeners.remove(listener)


class PartitionProgress:
    """How many of a run's partitions are done: a Prefect progress artifact (0 to 100) in the
    run's UI, and the same count for any in-process listener."""

    def __init__(self, total: int, key: str, description: str):
        self.total, self.done = total, 0
        self.artifact_id = create_progress_artifact(0.0, key=_artifact_key(key), description=description)
        self._tell()

    def advance(self) -> None:
        self.done += 1
        update_progress_artifact(self.artifact_id, round(100 * self.done / self.total, 1))
        self._tell()

    def _tell(self) -> None:
        for listener in list(_progress_listeners):
            listener(self.done, self.total)


def publish_scoring_report(manifests: list[ScoringManifest]) -> None:
    if not manifests:
        return
    first = manifests[0]
    create_table_artifact(
        key=_artifact_key(f"scoring-{first.dataset}"),
        description=f"Batch scoring with {first.model_name} v{first.model_version}",
        table=[
            {
                "date": m.partition_date,
                "role": m.role,
                "rows_in": m.rows_in,
                "rows_scored": m.rows_scored,
                "rows_quarantined": m.rows_quarantined,
                "rows_per_s": round(m.rows_per_second),
                "model_version": m.model_version,
                "status": "already scored (no-op)" if m.reused else "scored",
                "output_uri": m.output_uri,
            }
            for m in manifests
        ],
    )


def validation_markdown(report: ValidationReport) -> str:
    failed = (
        "\n".join(
            f"| `{e.name}` | {e.severity} | {'pass' if e.success else 'FAIL'} | {e.unexpected_count} "
            f"| {e.detail} |"
            for e in report.failed
        )
        or "| (none) | | | | |"
    )
    reasons = "\n".join(f"- {r}" for r in report.reasons) or "- none"
    return (
        f"# Data-quality gate: {report.decision.upper()}\n\n"
        f"Suite `{report.suite}`, partition {report.partition_date}: {report.rows_in} rows in, "
        f"{report.rows_passed} passed, {report.rows_quarantined} quarantined, "
        f"{report.rows_refused} refused.\n\n"
        f"Reasons for refusal:\n{reasons}\n\n"
        f"| expectation | severity | result | unexpected rows | detail |\n|---|---|---|---|---|\n"
        f"{failed}\n\n"
        f"Quarantine: `{report.quarantine_uri or 'none'}`  \n"
        f"Data Docs: {report.data_docs_uri or 'not built'}\n"
    )


def publish_validation_report(report: ValidationReport) -> None:
    key = _artifact_key(f"validation-{report.suite}")
    create_markdown_artifact(
        key=key,
        markdown=validation_markdown(report),
        description=f"Gate {report.decision} {report.partition_date}",
    )
    create_table_artifact(
        key=f"{key}-expectations",
        description=f"Expectations of {report.suite} on {report.partition_date}",
        table=[
            {
                "expectation": e.name,
                "severity": e.severity,
                "success": e.success,
                "unexpected_rows": e.unexpected_count,
                "gx_unexpected": e.gx_unexpected_count,
                "detail": e.detail,
            }
            for e in report.expectations
        ],
    )


def promotion_markdown(decision: PromotionDecision) -> str:
    metrics = sorted(set(decision.challenger_metrics) | set(decision.champion_metrics or {}))
    champion_metrics = decision.champion_metrics or {}
    metric_rows = "\n".join(
        f"| {m} | {decision.challenger_metrics.get(m, float('nan')):.4f} | {champion_metrics[m]:.4f} |"
        if m in champion_metrics
        else f"| {m} | {decision.challenger_metrics.get(m, float('nan')):.4f} | - |"
        for m in metrics
    )
    checks = "\n".join(
        f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {c.detail} |" for c in decision.checks
    )
    champion = f"v{decision.champion_version}" if decision.champion_version else "none"
    return (
        f"# Promotion decision: {decision.verdict.upper()}\n\n"
        f"{decision.model_name} v{decision.challenger_version} vs champion {champion} "
        f"({decision.mode}; {decision.decided_by}; {decision.decided_at}).\n\n"
        f"Reason: {decision.reason}\n\nEvaluated on {decision.evaluation}.\n\n"
        f"| metric | challenger | champion |\n|---|---|---|\n{metric_rows}\n\n"
        f"| gate | result | detail |\n|---|---|---|\n{checks}\n"
    )


def publish_promotion_report(decision: PromotionDecision) -> None:
    create_markdown_artifact(
        key=_artifact_key(f"promotion-{decision.model_name}"),
        markdown=promotion_markdown(decision),
        description=f"{decision.verdict} v{decision.challenger_version}",
    )


def publish_monitoring_report(
    report: MonitoringReport, decision: RetrainDecision, report_uri: str, chart_uri: str | None = None
) -> None:
    """A drift table (one row per feature, flagged ones marked) and a summary with the verdict."""
    key = _artifact_key(f"monitoring-{report.dataset}")
    if report.drift:
        create_table_artifact(
            key=f"{key}-drift",
            description=f"Drift of {report.day} vs {report.model_name} v{report.scored_by}'s training data",
            table=[
                {
                    "feature": d.feature,
                    "kind": d.kind,
                    "psi": round(d.psi, 4),
                    "ks": None if d.ks is None else round(d.ks, 4),
                    "unseen_share": d.unseen_share,
                    "flagged": "DRIFT" if d.flagged else "",
                }
                for d in report.drift
            ],
        )
    performance = "\n".join(
        f"| {scope} | {s.first_event_day}..{s.last_event_day} | v{s.model_version} | {s.labelled_rows} | "
        + ", ".join(f"{k} {v:.3f}" for k, v in s.metrics.items())
        + " |"
        for scope, s in (("day", report.day_performance), ("rolling", report.rolling_performance))
        if s
    )
    verdict = decision.action + (f": {decision.suppressed_because}" if decision.suppressed_because else "")
    create_markdown_artifact(
        key=key,
        description=f"Monitoring of {report.model_name} v{report.model_version} on {report.day}",
        markdown=(
            f"# Monitoring {report.model_name} v{report.model_version}, {report.day}\n\n"
            f"Drift: {report.drift_verdict}; drifted features: {report.drifted_features or 'none'}; "
            f"prediction PSI {report.prediction_psi if report.prediction_psi is not None else 'n/a'}.\n\n"
            "| scope | event days | model | labelled rows | metrics |\n|---|---|---|---|---|\n"
            f"{performance}\n\n"
            f"Breaches: {'; '.join(report.breaches) or 'none'}\n\n"
            f"**Retrain verdict: {verdict}**\n\n"
            + (f"Chart of the recent history: `{chart_uri}`\n\n" if chart_uri else "")
            + f"History in `{report_uri}` and the MLflow experiment "
            "of monitoring metrics.\n"
        ),
    )
