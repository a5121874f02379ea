"""Run reports as Prefect artifacts. What each report shows is decided once, as a `ReportTable`
(`inferloop.tasks.report_tables`); here it is only laid out as a markdown or table artifact, and
the CLI prints the same tables (`inferloop.cli.tables`)."""

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

from inferloop.core.report_table import ReportTable, cell_text
from inferloop.tasks.report_tables import (
    drift_table,
    expectations_table,
    markdown_table,
    monitoring_table,
    promotion_table,
    scoring_table,
    training_table,
    validation_table,
)

if TYPE_CHECKING:  # for annotations only: scoring must not import monitoring (scipy.stats, ~0.6 s)
    from inferloop.core.registry import ModelVersionRef
    from inferloop.tasks.gate.validation import ValidationReport
    from inferloop.tasks.monitoring.daily_report import MonitoringReport
    from inferloop.tasks.monitoring.retrain_policy import RetrainDecision
    from inferloop.tasks.promotion.decision import PromotionDecision
    from inferloop.tasks.scoring.batch_scoring import ScoringManifest


def _artifact_key(text: str) -> str:
    # Prefect keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def markdown(table: ReportTable) -> str:
    """The whole report as markdown: title, sections, the table (every column), caption."""
    rows = [[cell_text(cell) for cell in row] for row in table.rows]
    empty = ["(none)"] + [""] * (len(table.columns) - 1)
    parts = [
        f"# {table.title}",
        *table.sections,
        markdown_table([column.heading for column in table.columns], rows or [empty]),
    ]
    return "\n\n".join([*parts, table.caption] if table.caption else parts) + "\n"


def publish_markdown(key: str, table: ReportTable, description: str) -> None:
    create_markdown_artifact(key=_artifact_key(key), markdown=markdown(table), description=description)


def publish_table(key: str, table: ReportTable) -> None:
    """A table artifact: one row per table row, keyed by column name; its title (and caption)
    describe it."""
    description = f"{table.title}\n\n{table.caption}" if table.caption else table.title
    create_table_artifact(key=_artifact_key(key), table=table.records(), description=description)


def publish_training_report(
    ref: ModelVersionRef, metrics: dict[str, float], window: str, train_rows: int, holdout_rows: int
) -> None:
    publish_markdown(
        f"training-{ref.name}",
        training_table(ref, metrics, window, train_rows, holdout_rows),
        description=f"Training of {ref.name} v{ref.version}",
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
    if manifests:
        publish_table(f"scoring-{manifests[0].dataset}", scoring_table(manifests))


def publish_validation_report(report: ValidationReport) -> None:
    key = f"validation-{report.suite}"
    description = f"Gate {report.decision} {report.partition_date}"
    publish_markdown(key, validation_table(report), description=description)
    publish_table(f"{key}-expectations", expectations_table(report))


def promotion_markdown(decision: PromotionDecision) -> str:
    """The decision as the approval form in the Prefect UI shows it (and its artifact)."""
    return markdown(promotion_table(decision))


def publish_promotion_report(decision: PromotionDecision) -> None:
    publish_markdown(
        f"promotion-{decision.model_name}",
        promotion_table(decision),
        description=f"{decision.verdict} v{decision.challenger_version}",
    )


def publish_monitoring_report(
    report: MonitoringReport, decision: RetrainDecision, report_uri: str, chart_uri: str | None = None
) -> None:
    """A drift table (one row per feature, flagged ones marked; another for the online rows when
    they were measured) and a summary with the verdict."""
    key = f"monitoring-{report.dataset}"
    if report.drift:
        publish_table(f"{key}-drift", drift_table(report))
    if report.online and report.online.drift:
        publish_table(f"{key}-online-drift", drift_table(report, online=True))
    publish_markdown(
        key,
        monitoring_table(report, decision, report_uri, chart_uri),
        description=f"Monitoring of {report.model_name} v{report.model_version} on {report.day}",
    )


def recent_flow_runs(limit: int) -> list:
    """The latest `limit` flow runs on the Prefect server, newest first."""
    from prefect import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=limit)
