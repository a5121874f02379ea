"""Run the data-quality gate alone on one partition."""

from typing import Any

from prefect import flow

from inferloop.core.periods import PartitionKey
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.batch_inference import logical_partition
from inferloop.tasks.gate.partition_gate import validate_partition
from inferloop.tasks.gate.validation import ValidationReport
from inferloop.tasks.reports import publish_validation_report


@flow(name="validate", log_prints=True)
def validate(
    partition_date: PartitionKey | None = None,
    purpose: str = "inference",
    overrides: dict[str, Any] | None = None,
) -> ValidationReport:
    """Check `partition_date` with the committed `<dataset>_<purpose>` suite; write its
    quarantine and Data Docs; publish the report. Refusal is reported, not raised.

    Args:
        partition_date: Day to check (default: the logical date, yesterday for a run started now).
        purpose: Which suite: `inference` (features only) or `training` (features and labels).
        overrides: Settings to change for this run, by knob name, e.g. {"min_roc_auc": 0.7};
            see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    report = validate_partition(
        lake_storage(settings.lake),
        settings.dataset,
        purpose,
        logical_partition(settings.dataset.partitioning, partition_date),
        settings.gate,
        settings.scoring,
    )
    publish_validation_report(report)
    print(
        f"{report.suite} {report.partition_date}: {report.decision}; {report.rows_in} in, "
        f"{report.rows_quarantined} quarantined"
    )
    return report
