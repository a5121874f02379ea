"""Importing a user's file: every row is written or quarantined, labels arrive a day later,
re-importing changes nothing, on a local lake and on S3."""

import hashlib
import time
from datetime import UTC, date, timedelta, timezone
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inferloop.core.dataset import load_dataset_spec
from inferloop.core.settings import REPO_ROOT
from inferloop.core.storage import Storage
from inferloop.tasks.data.conform import IdTypeError, SpecMismatchError
from inferloop.tasks.data.importing import import_source
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.gate.partition_gate import validate_partition
from tests.fixtures.elec2 import BAD_ROWS, EXPECTED_REASONS, ROWS_PER_DAY, write_elec2_like_csv
from tests.fixtures.real_data import REAL_ELEC2, needs_real_elec2

ELEC2 = load_dataset_spec(REPO_ROOT / "datasets" / "elec2.yaml")
FIRST_DAY = date(1996, 5, 7)
DAYS = 3


@pytest.fixture
def lake(tmp_path) -> Storage:
    return Storage((tmp_path / "lake").as_uri())


@pytest.fixture
def elec2_csv(tmp_path) -> Path:
    return write_elec2_like_csv(tmp_path / "export" / "electricity.csv", days=DAYS)


def checksums(storage: Storage) -> dict[str, str]:
    """Every file of a local lake, hidden temp files included, by its SHA-256."""
    root = Path(storage.path(""))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.*")}


def s3_checksums(endpoint: str, bucket: str, prefix: str) -> dict[str, str]:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = [o["Key"] for o in listed if not o["Key"].endswith("/")]  # pyarrow's directory markers
    return {k: hashlib.sha256(s3.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in keys}


def assert_elec2_fixture_imported(storage: Storage, summary) -> None:
    rows = DAYS * ROWS_PER_DAY
    assert (summary.rows_in, summary.rows_written, summary.rows_quarantined) == (rows, rows - 4, 4)
    assert summary.reasons == EXPECTED_REASONS
    assert (summary.days, summary.first_day, summary.last_day) == (DAYS, FIRST_DAY, date(1996, 5, 9))
    assert storage.list_partitions("elec2") == [FIRST_DAY + timedelta(days=i) for i in range(DAYS)]

    features = pd.concat(
        storage.read_table(f"elec2/date={d}").to_pandas() for d in storage.list_partitions("elec2")
    )
    assert list(features.columns) == ELEC2.inference_columns  # no label, no dropped `date`
    good_rows = [i for i in range(rows) if i not in BAD_ROWS]
    assert features["row_id"].tolist() == good_rows  # the source row number, bad rows skipped
    expected_times = pd.Timestamp(FIRST_DAY) + pd.to_timedelta(pd.Series(good_rows) * 30, unit="min")
    assert features["event_time"].tolist() == expected_times.tolist()
    assert features["day"].tolist()[:2] == ["2", "2"] and features["nswprice"].dtype == "float64"

    quarantine = f"quarantine/import/elec2/part-{summary.source_sha256[:16]}.parquet"
    assert summary.quarantine_uri == storage.uri(quarantine)
    quarantined = storage.read_table(quarantine).to_pandas()
    assert quarantined["_source_row"].tolist() == list(BAD_ROWS)
    assert (
        quarantined.loc[0, "nswprice"] == "#VALUE!"
        and "nswprice: not a number ('#VALUE!')" in quarantined.loc[0, "_reasons"]
    )
    assert quarantined.loc[3, "_reasons"] == "nswdemand: not a number ('0,42'); class: missing"


def test_import_writes_or_quarantines_every_row(lake, elec2_csv):
    assert_elec2_fixture_imported(lake, import_source.fn(lake, ELEC2, str(elec2_csv)))


def test_labels_are_written_on_the_day_they_arrive(lake, elec2_csv):
    import_source.fn(lake, ELEC2, str(elec2_csv))
    assert lake.list_partitions("elec2_labels") == [FIRST_DAY + timedelta(days=i) for i in range(1, DAYS + 1)]
    assert lake.data_files("elec2_labels/date=1996-05-08") == [
        "elec2_labels/date=1996-05-08/part-1996-05-07.parquet"
    ]
    labels = lake.read_table("elec2_labels/date=1996-05-08").to_pandas()
    source = pd.read_csv(elec2_csv, dtype=str).iloc[:ROWS_PER_DAY].drop(index=[10])
    assert list(labels.columns) == ["row_id", "class"]
    assert labels["row_id"].tolist() == source.index.tolist()
    assert labels["class"].tolist() == source["class"].tolist()  # raw values, not 0/1


def test_importing_the_same_file_again_rewrites_identical_files(lake, elec2_csv):
    import_source.fn(lake, ELEC2, str(elec2_csv))
    first = checksums(lake)
    import_source.fn(lake, ELEC2, str(elec2_csv))
    assert checksums(lake) == first
    assert len(first) == 2 * DAYS + 1  # features and labels per day, one quarantine file


def test_import_from_s3_into_an_s3_lake(s3_endpoint, s3_bucket, elec2_csv):
    boto3.client("s3", endpoint_url=s3_endpoint).upload_file(str(elec2_csv), s3_bucket, "exports/elec2.csv")
    lake = Storage(f"s3://{s3_bucket}/lake", s3_endpoint)
    summary = import_source.fn(lake, ELEC2, f"s3://{s3_bucket}/exports/elec2.csv")
    assert summary.source_uri == f"s3://{s3_bucket}/exports/elec2.csv"
    assert_elec2_fixture_imported(lake, summary)
    first = s3_checksums(s3_endpoint, s3_bucket, "lake/")
    import_source.fn(lake, ELEC2, f"s3://{s3_bucket}/exports/elec2.csv")
    assert s3_checksums(s3_endpoint, s3_bucket, "lake/") == first and len(first) == 2 * DAYS + 1


def test_committed_elec2_suites_accept_imported_days(settings, lake, elec2_csv):
    import_source.fn(lake, ELEC2, str(elec2_csv))
    for day in (FIRST_DAY, FIRST_DAY + timedelta(days=2)):  # Victoria's placeholders, then real values
        for purpose in ("inference", "training"):
            report = validate_partition.fn(lake, ELEC2, purpose, day, settings.gate, settings.scoring)
            assert report.decision == "accepted", report.reasons
            assert report.rows_quarantined == 0


def test_parquet_export_of_the_synthetic_feed_imports_as_generated(settings, lake, tmp_path):
    spec = settings.dataset  # transactions: ids and times come from the source
    features, labels = generate_day(GeneratorConfig(rows_per_day=200), 0)
    export = tmp_path / "export.data"  # parquet recognised by its magic bytes
    exported = features.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column)
    pq.write_table(pa.Table.from_pandas(exported, preserve_index=False), export)
    summary = import_source.fn(lake, spec, str(export))
    assert (summary.rows_in, summary.rows_written, summary.rows_quarantined) == (200, 200, 0)
    pd.testing.assert_frame_equal(lake.read_table("transactions/date=2026-01-01").to_pandas(), features)
    arrived = lake.read_table("transactions_labels/date=2026-01-02").to_pandas()
    pd.testing.assert_frame_equal(arrived, labels[[spec.id_column, spec.label.column]])


def test_a_spec_column_missing_from_the_source_is_named(lake, tmp_path, elec2_csv):
    source = pd.read_csv(elec2_csv, dtype=str).drop(columns=["vicprice"])
    source.to_csv(tmp_path / "no_vic.csv", index=False)
    with pytest.raises(SpecMismatchError, match=r"features\.vicprice 'vicprice'"):
        import_source.fn(lake, ELEC2, str(tmp_path / "no_vic.csv"))
    assert not lake.exists("")  # nothing written


def test_a_source_column_the_spec_does_not_mention_is_listed(lake, tmp_path, elec2_csv):
    source = pd.read_csv(elec2_csv, dtype=str).assign(region="NSW", note="x")
    source.to_csv(tmp_path / "extra.csv", index=False)
    with pytest.raises(SpecMismatchError, match=r"\['region', 'note'\]\. Add them to features or drop"):
        import_source.fn(lake, ELEC2, str(tmp_path / "extra.csv"))


def test_a_generated_id_may_not_shadow_a_source_column(lake, tmp_path, elec2_csv):
    source = pd.read_csv(elec2_csv, dtype=str).assign(row_id="7")
    source.to_csv(tmp_path / "with_id.csv", index=False)
    with pytest.raises(SpecMismatchError, match="remove generate_id: true"):
        import_source.fn(lake, ELEC2, str(tmp_path / "with_id.csv"))


def transactions_export(spec, rows: int):
    """The synthetic feed as a user would export it: features and label in one table."""
    features, labels = generate_day(GeneratorConfig(rows_per_day=rows), 0)
    return features.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column)


def test_iso_8601_times_of_mixed_precision_and_offsets_import_with_no_row_quarantined(
    settings, lake, tmp_path
):
    """isoformat() leaves the fraction out when the microseconds are 0, as in the first row
    here; offsets differ from row to row. Every row is imported, at its UTC time."""
    spec = settings.dataset
    exported = transactions_export(spec, 1_200)
    utc = exported[spec.time_column].dt.floor("s") + pd.to_timedelta(
        [0 if i % 3 == 0 else 1_000 * i + 1 for i in range(len(exported))], unit="us"
    )
    offsets = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((0, 0), (2, 0), (-5, -30), (9, 45))]
    exported[spec.time_column] = [
        (
            t.to_pydatetime().replace(tzinfo=UTC).astimezone(offsets[i % 4]) if i % 5 else t.to_pydatetime()
        ).isoformat()
        for i, t in enumerate(utc)
    ]
    assert "." not in exported[spec.time_column].iloc[0] and "." in exported[spec.time_column].iloc[1]
    exported.to_csv(tmp_path / "iso.csv", index=False)
    summary = import_source.fn(lake, spec, str(tmp_path / "iso.csv"))
    assert (summary.rows_in, summary.rows_written, summary.rows_quarantined) == (1_200, 1_200, 0)
    imported = pd.concat(
        lake.read_table(f"transactions/date={d}").to_pandas() for d in lake.list_partitions("transactions")
    )
    assert sorted(imported[spec.time_column]) == sorted(utc)


@pytest.mark.parametrize(
    ("ids", "stored"),
    [
        (["tx-17", "123.0", "007"], ["tx-17", "123.0", "007"]),  # text, as a CSV always is
        (pa.array([2**64 - 1, 2**63, 5], pa.uint64()), [str(2**64 - 1), str(2**63), "5"]),
        (pa.array([1.0, 2.0, 3.0]), [1, 2, 3]),
    ],
)
def test_source_ids_are_stored_exactly(settings, lake, tmp_path, ids, stored):
    spec = settings.dataset
    exported = pa.Table.from_pandas(transactions_export(spec, 3), preserve_index=False)
    column = exported.schema.get_field_index(spec.id_column)
    pq.write_table(exported.set_column(column, spec.id_column, pa.array(ids)), tmp_path / "ids.parquet")
    summary = import_source.fn(lake, spec, str(tmp_path / "ids.parquet"))
    assert summary.rows_quarantined == 0
    assert lake.read_table("transactions/date=2026-01-01").column(spec.id_column).to_pylist() == stored
    labels = lake.read_table("transactions_labels/date=2026-01-02").column(spec.id_column).to_pylist()
    assert labels == stored  # features and labels join on the same ids


def test_fractional_ids_are_refused_at_import(settings, lake, tmp_path):
    spec = settings.dataset
    exported = transactions_export(spec, 3).assign(**{spec.id_column: [1.5, 2.0, 3.0]})
    exported.to_parquet(tmp_path / "ids.parquet")
    with pytest.raises(
        IdTypeError, match=r"'transaction_id' holds float64 values \(1.5\): ids must be integers or text"
    ):
        import_source.fn(lake, spec, str(tmp_path / "ids.parquet"))
    assert not lake.exists("")  # nothing written


@pytest.mark.slow
@needs_real_elec2
def test_real_elec2_file_imports_and_passes_the_gate(settings, lake):
    started = time.perf_counter()
    summary = import_source.fn(lake, ELEC2, str(REAL_ELEC2))
    seconds = time.perf_counter() - started
    assert (summary.rows_in, summary.rows_written, summary.rows_quarantined) == (45_312, 45_312, 0)
    assert (summary.days, summary.first_day, summary.last_day) == (944, FIRST_DAY, date(1998, 12, 6))
    assert len(lake.read_table("elec2/date=1998-06-01")) == ROWS_PER_DAY
    for day in (date(1996, 5, 8), date(1998, 6, 1)):  # Victoria's placeholders, then real values
        for purpose in ("inference", "training"):
            assert (
                validate_partition.fn(lake, ELEC2, purpose, day, settings.gate, settings.scoring).decision
                == "accepted"
            )
    print(f"imported {summary.rows_in} rows into {summary.days} days in {seconds:.1f} s")


def test_a_weekly_feed_is_written_by_iso_week_with_labels_a_week_later(lake, tmp_path):
    weekly = ELEC2.model_copy(update={"partition": "week"})
    source = write_elec2_like_csv(tmp_path / "weekly.csv", days=10)  # Tuesday 1996-05-07 .. 05-16
    summary = import_source.fn(lake, weekly, str(source))

    mondays = [date(1996, 5, 6), date(1996, 5, 13)]
    assert lake.list_partitions("elec2") == mondays
    assert (summary.days, summary.first_day, summary.last_day, summary.partition) == (2, *mondays, "week")
    rows = [lake.read_table(f"elec2/date={monday}").to_pandas() for monday in mondays]
    assert [len(r) for r in rows] == [6 * ROWS_PER_DAY - 4, 4 * ROWS_PER_DAY]  # the bad rows are in week 1
    assert all(
        (r["event_time"].dt.normalize() - pd.Timestamp(m)).dt.days.between(0, 6).all()
        for r, m in zip(rows, mondays, strict=True)
    )
    assert lake.list_partitions("elec2_labels") == [date(1996, 5, 13), date(1996, 5, 20)]
