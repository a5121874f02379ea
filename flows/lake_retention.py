"""Prune the lake's day partitions older than each table's retention."""

from datetime import date
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from inferloop.core.periods import PartitionKey
from inferloop.core.settings import load_settings
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.retention import (
    RetentionReport,
    check_retention,
    delete_expired_partitions,
    kept_days,
    list_expired_partitions,
    retention_table,
)
from inferloop.tasks.reports import publish_markdown


@flow(name="lake-retention", log_prints=True)
def lake_retention(
    as_of: PartitionKey | None = None, dry_run: bool = False, overrides: dict[str, Any] | None = None
) -> RetentionReport:
    """List the features, predictions, quarantine and online partitions older than their
    INFERLOOP_RETAIN_*_DAYS before `as_of` and delete exactly those (with `dry_run`: only list
    them). Labels, reports, decisions and replays are never pruned. Rerunning deletes nothing more.

    Args:
        as_of: The day retention counts back from (default: the day the run was scheduled for).
        dry_run: Only list what would be deleted.
        overrides: Settings to change for this run, by knob name, e.g.
            {"retain_predictions_days": 90}; see the README's Settings table.
    """
    settings = load_settings(**(overrides or {}))
    check_retention(settings)
    storage = lake_storage(settings.lake)
    as_of = as_of or date.fromisoformat(flow_run.scheduled_start_time.date().isoformat())
    expired = list_expired_partitions(
        storage, settings.lake, settings.dataset.name, as_of, settings.dataset.partitioning
    )
    if not dry_run:
        expired = delete_expired_partitions(storage, expired)
    report = RetentionReport(storage.uri(""), as_of, dry_run, kept_days(settings.lake), expired)
    publish_markdown("lake-retention", retention_table(report), description=retention_table(report).title)
    print(retention_table(report).title)
    return report
