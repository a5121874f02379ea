"""`inferloop data import`: a user's CSV or parquet file into the lake, as its dataset spec says."""

from dataclasses import asdict, dataclass
from datetime import date

import pandas as pd
import pyarrow as pa
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.personal_data import NO_PERSONAL_COLUMNS, Pseudonymiser
from inferloop.core.storage import Storage
from inferloop.tasks.data.conform import check_columns, conform_rows, lake_schema
from inferloop.tasks.data.source import SourceFile, read_source


@dataclass
class ImportSummary:
    """What an import read, wrote and quarantined, and where."""

    dataset: str
    source_uri: str
    source_sha256: str
    rows_in: int
    rows_written: int
    rows_quarantined: int
    days: int
    first_day: date | None
    last_day: date | None
    features_uri: str
    labels_uri: str
    quarantine_uri: str | None
    reasons: dict[str, int]  # rows failing each check (a row can fail several)
    partition: str = "day"  # what `days` counts: the spec's partitions

    def to_dict(self) -> dict:
        return asdict(self)


def write_imported_rows(storage: Storage, spec: DatasetSpec, rows: pd.DataFrame) -> list[date]:
    """Write each event partition's features (no label) and its labels at their arrival partition
    (the spec's partitioning floors each row's event time to its partition's key)."""
    schema = lake_schema(rows, spec)
    features, labels = (
        pa.schema([schema.field(column) for column in columns])
        for columns in (spec.inference_columns, [spec.id_column, spec.label.column])
    )
    days = []
    for day, day_rows in rows.groupby(spec.partitioning.keys_of(rows[spec.time_column]), sort=True):
        storage.write_table(
            catalog.imported_features_file(spec.name, day),
            pa.Table.from_pandas(day_rows[features.names], schema=features, preserve_index=False),
        )
        storage.write_table(
            catalog.labels_file(spec.name, spec.label_arrival(day), day),
            pa.Table.from_pandas(day_rows[labels.names], schema=labels, preserve_index=False),
        )
        days.append(day)
    return days


def import_file(
    storage: Storage, spec: DatasetSpec, source: SourceFile, personal: Pseudonymiser = NO_PERSONAL_COLUMNS
) -> ImportSummary:
    """Conform a read source to `spec` and write it: features at `<name>/date=D/part-import.parquet`,
    labels at `<name>_labels/date=<D + delay>/part-D.parquet`, bad rows (raw values and reasons)
    at `quarantine/import/<name>/part-<content hash>.parquet` (personal columns as keyed hashes).

    Idempotent: importing the same file again rewrites identical files and nothing else. A
    later import of a different file covering the same day replaces that day's imported rows.
    """
    check_columns(list(source.frame.columns), spec, source.uri)
    conformed = conform_rows(source.frame, spec)
    days = write_imported_rows(storage, spec, conformed.rows) if len(conformed.rows) else []
    quarantine_uri = None
    if len(conformed.quarantined):
        path = catalog.import_quarantine_file(spec.name, source.sha256)
        quarantined = personal.frame(conformed.quarantined)
        storage.write_table(path, pa.Table.from_pandas(quarantined, preserve_index=False))
        quarantine_uri = storage.uri(path)
    summary = ImportSummary(
        dataset=spec.name,
        source_uri=source.uri,
        source_sha256=source.sha256,
        rows_in=len(source.frame),
        rows_written=len(conformed.rows),
        rows_quarantined=len(conformed.quarantined),
        days=len(days),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        features_uri=storage.uri(catalog.features_table(spec.name)),
        labels_uri=storage.uri(catalog.labels_table(spec.name)),
        quarantine_uri=quarantine_uri,
        reasons=conformed.reasons,
        partition=spec.partition,
    )
    if summary.rows_in != summary.rows_written + summary.rows_quarantined:
        raise AssertionError(f"Import accounting broken: {summary}")
    return summary


@task(name="import-source")
def import_source(
    storage: Storage,
    spec: DatasetSpec,
    source: str,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    personal: Pseudonymiser = NO_PERSONAL_COLUMNS,
) -> ImportSummary:
    """Read `source` (a local path or s3:// URI, through the lake's S3 settings) and import it."""
    return import_file(storage, spec, read_source(source, storage, delimiter, encoding), personal)
