"""How long the lake keeps its day partitions, and pruning those older than that.

Four tables have a retention (`INFERLOOP_RETAIN_*_DAYS`; unset: kept forever): the features of
the configured dataset, batch predictions (every model and version), the gate's quarantine (every
suite) and the online endpoint's predictions (every model). A partition goes whole when its day
is more than the table's days before `as_of`. Nothing else is ever pruned: labels, validation
reports and monitoring reports (the audit trail), the retrain ledger and promotion records,
replays, a version's held-out scores and the import quarantine (not by day) stay.

`expired_partitions` lists what would go; `delete_partitions` deletes exactly that list, so a run
deletes what its dry run listed, and a rerun finds nothing left to delete.
"""

from dataclasses import asdict, dataclass, field
from datetime import date

from prefect import task

from inferloop.core import catalog
from inferloop.core.periods import DAILY, Partitioning
from inferloop.core.report_table import ReportTable, columns
from inferloop.core.settings import LakeSettings, Settings, SettingsError
from inferloop.core.storage import Storage

FEATURES = "features"
PREDICTIONS, QUARANTINE, ONLINE = catalog.PREDICTIONS, catalog.QUARANTINE, catalog.ONLINE
KNOB = {
    FEATURES: "retain_features_days",
    PREDICTIONS: "retain_predictions_days",
    QUARANTINE: "retain_quarantine_days",
    ONLINE: "retain_online_days",
}


@dataclass(frozen=True)
class ExpiredPartition:
    """A day partition older than its table's retention: the whole directory goes."""

    table: str  # features | predictions | quarantine | online
    path: str  # relative to the lake root, e.g. predictions/model=M/version=3/date=2026-01-02
    day: date


@dataclass
class RetentionReport:
    """What a retention run found expired and (unless a dry run) deleted."""

    lake_uri: str
    as_of: date
    dry_run: bool
    kept_days: dict[str, int | None]  # per table; None: kept forever
    partitions: list[ExpiredPartition] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def kept_days(lake: LakeSettings) -> dict[str, int | None]:
    """Days each table keeps (None: forever)."""
    return {table: getattr(lake, knob) for table, knob in KNOB.items()}


def check_retention(settings: Settings) -> None:
    """Refuse a retention that would delete what the loop still needs to run."""
    needs = [
        (FEATURES, settings.training.train_window_days, "train_window_days", "training finds no data"),
        (
            PREDICTIONS,
            settings.monitoring.performance_window_days,
            "performance_window_days",
            "monitoring finds no predictions to judge",
        ),
    ]
    for table, needed, knob, consequence in needs:
        days = getattr(settings.lake, KNOB[table])
        if days is not None and days < needed:
            raise SettingsError(
                f"INFERLOOP_{KNOB[table].upper()}={days} is shorter than INFERLOOP_{knob.upper()}="
                f"{needed}: {consequence}; keep at least {needed} days (or unset it: keep forever)"
            )


def partition_tables(storage: Storage, dataset: str) -> dict[str, list[str]]:
    """The directories holding day partitions, by table: the dataset's features, each model
    version's predictions, each suite's quarantine and each model's online predictions."""
    versions = [
        catalog.version_predictions(model, catalog.version_of(version))
        for model in _names(storage, catalog.PREDICTIONS, catalog.MODEL_KEY)
        for version in storage.subdirectories(catalog.model_predictions(model), catalog.VERSION_KEY)
    ]
    return {
        FEATURES: [catalog.features_table(dataset)],
        PREDICTIONS: versions,
        QUARANTINE: [catalog.quarantine_table(s) for s in storage.subdirectories(catalog.QUARANTINE)],
        ONLINE: [
            catalog.online_predictions_table(model)
            for model in _names(storage, catalog.online_predictions_root(), catalog.MODEL_KEY)
        ],
    }


def _names(storage: Storage, directory: str, key: str) -> list[str]:
    """The values of the `key=VALUE` directories under `directory`."""
    return [name.removeprefix(key) for name in storage.subdirectories(directory, key)]


def expired_partitions(
    storage: Storage, lake: LakeSettings, dataset: str, as_of: date, partitioning: Partitioning = DAILY
) -> list[ExpiredPartition]:
    """Every partition more than its table's retention before `as_of`, counted in the feed's
    partitions (a daily table kept for 30 keeps `as_of` - 30 days and later; a monthly one,
    30 months), sorted by table, path."""
    retention = kept_days(lake)
    expired = []
    for table, directories in partition_tables(storage, dataset).items():
        days = retention[table]
        if days is None:
            continue
        cutoff = partitioning.shift(as_of, -days)
        for directory in directories:
            expired += [
                ExpiredPartition(table, catalog.partition_dir(directory, day), day)
                for day in storage.list_partitions(directory)
                if partitioning.floor(day) < cutoff  # online partitions are days, whatever the feed's
            ]
    return sorted(expired, key=lambda p: (p.table, p.path))


def delete_partitions(storage: Storage, partitions: list[ExpiredPartition]) -> list[ExpiredPartition]:
    """Delete exactly these partitions. The manifest goes first: a partition interrupted
    half-way is incomplete to readers (never a committed partition missing its data), and the
    next run deletes the rest."""
    for partition in partitions:
        storage.delete_file(catalog.manifest(partition.path))
        storage.delete_dir(partition.path)
    return partitions


def retention_table(report: RetentionReport) -> ReportTable:
    """One row per expired partition: the CLI table and the Prefect artifact alike."""
    verb = "would delete" if report.dry_run else "deleted"
    kept = ", ".join(
        f"{table} {days} days" if days is not None else f"{table} forever"
        for table, days in report.kept_days.items()
    )
    return ReportTable(
        title=f"Lake retention as of {report.as_of}: {verb} {len(report.partitions)} partition(s)"
        + (" (dry run)" if report.dry_run else ""),
        columns=columns("table", "day", "partition"),
        rows=tuple((p.table, p.day.isoformat(), p.path) for p in report.partitions),
        caption=f"Kept: {kept} (INFERLOOP_RETAIN_*_DAYS). Lake: {report.lake_uri}. Labels, "
        "validation and monitoring reports, decisions and replays are never pruned.",
    )


@task(name="list-expired-partitions")
def list_expired_partitions(
    storage: Storage, lake: LakeSettings, dataset: str, as_of: date, partitioning: Partitioning
) -> list[ExpiredPartition]:
    return expired_partitions(storage, lake, dataset, as_of, partitioning)


@task(name="delete-expired-partitions")
def delete_expired_partitions(storage: Storage, partitions: list[ExpiredPartition]) -> list[ExpiredPartition]:
    """Idempotent: a partition already gone is skipped."""
    return delete_partitions(storage, partitions)
