"""The bad-input corpus: each case is a clear refusal, a clear error, or a quarantine whose
counts add up to the row. Never a traceback from deep inside a library, never a lost row."""

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import inferloop.tasks.gate.expectations
from inferloop.core.storage import Storage, StorageError
from inferloop.tasks.data.feeds import MissingDataError
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.gate.partition_gate import validate_partition
from inferloop.tasks.gate.row_checks import row_failures

DAY = date(2026, 1, 1)
ROWS = 2_000
PARTITION = f"transactions/date={DAY}/part-0.parquet"


@pytest.fixture
def lake(settings, tmp_path):
    return Storage((tmp_path / "lake").as_uri()), settings


@pytest.fixture
def clean() -> pd.DataFrame:
    return generate_day(GeneratorConfig(rows_per_day=ROWS), 0)[0]


def put(storage: Storage, frame: pd.DataFrame, day: date = DAY) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    storage.write_table(f"transactions/date={day}/part-0.parquet", table)


def gate(lake, frame: pd.DataFrame | None = None, purpose: str = "inference", day: date = DAY):
    storage, settings = lake
    if frame is not None:
        put(storage, frame, day)
    return validate_partition.fn(storage, settings.dataset, purpose, day, settings.gate, settings.scoring)


def quarantine(lake, report) -> pd.DataFrame:
    return lake[0].read_table(f"quarantine/{report.suite}/date={DAY}").to_pandas()


def assert_accounted(report) -> None:
    assert report.rows_in == report.rows_passed + report.rows_quarantined + report.rows_refused


def refused_because(report, *fragments: str) -> None:
    assert report.refused, report
    text = "; ".join(report.reasons)
    for fragment in fragments:
        assert fragment in text, text
    assert report.rows_passed == 0 and report.rows_quarantined == 0
    assert_accounted(report)


def quarantined(lake, report, expected: int, expectation: str) -> pd.DataFrame:
    assert not report.refused, report.reasons
    assert report.rows_quarantined == expected
    assert report.rows_passed == report.rows_in - expected
    assert_accounted(report)
    rows = quarantine(lake, report)
    assert len(rows) == expected
    assert rows["_failed_expectations"].str.contains(expectation, regex=False).all()
    return rows


def test_clean_partition_is_accepted_whole(lake, clean):
    report = gate(lake, clean)
    assert report.decision == "accepted" and report.rows_passed == ROWS
    assert report.quarantine_uri is None and not report.failed
    assert report.data_docs_uri.endswith("index.html")


# --- schema: refused with a message naming the column -------------------------------------


def test_missing_required_column(lake, clean):
    refused_because(gate(lake, clean.drop(columns=["channel"])), "missing columns ['channel']")


def test_extra_column(lake, clean):
    report = gate(lake, clean.assign(debug_flag=1))
    refused_because(report, "unexpected columns ['debug_flag']")


def test_renamed_column(lake, clean):
    report = gate(lake, clean.rename(columns={"amount": "amt"}))
    refused_because(report, "missing columns ['amount']", "unexpected columns ['amt']")


def test_label_present_in_inference_input(lake, clean):
    refused_because(gate(lake, clean.assign(is_fraud=0)), "unexpected columns ['is_fraud']")


def test_numbers_as_strings(lake, clean):
    report = gate(lake, clean.assign(amount=clean["amount"].astype(str)))
    refused_because(report, "column 'amount' has type object")


def test_mixed_type_numeric_column(lake, clean):
    mixed = clean.astype({"tx_count_1h": object})
    mixed.loc[:4, "tx_count_1h"] = "many"
    storage, _ = lake
    # Arrow cannot store a mixed column as numbers: the producer would have to write strings.
    put(storage, mixed.assign(tx_count_1h=mixed["tx_count_1h"].astype(str)))
    refused_because(gate(lake), "column 'tx_count_1h' has type object")


def test_duplicated_ids(lake, clean):
    duplicated = clean.copy()
    duplicated.loc[10:14, "transaction_id"] = duplicated.loc[0, "transaction_id"]
    refused_because(gate(lake, duplicated), "5 duplicated ids")


def test_zero_rows(lake, clean):
    refused_because(gate(lake, clean.head(0)), "0 rows, expected between")


def test_all_null_column(lake, clean):
    report = gate(lake, clean.assign(account_age_days=np.nan))
    refused_because(report, "100.0% of rows fail row-level checks")


def test_rows_failing_an_expectation_with_its_own_tolerance_count_against_it_alone(lake, clean):
    """1.5% unseen devices (the suite tolerates 2%) and 9% missing amounts (under the 10% cap):
    10.5% of rows are quarantined, and the partition passes."""
    odd = clean.copy()
    odd.loc[:29, "device"] = "smart_fridge"
    odd.loc[1_000:1_179, "amount"] = np.nan
    report = gate(lake, odd)
    assert (report.decision, report.rows_quarantined) == ("accepted", 210), report.reasons


def test_unseen_categories_above_tolerance(lake, clean):
    odd = clean.copy()
    odd.loc[: int(ROWS * 0.05) - 1, "device"] = "smart_fridge"
    refused_because(gate(lake, odd), "expect_column_values_to_be_in_set(device): 5.0%")


# --- row-level: quarantined with reasons, the rest continue ---------------------------------


def test_nan_in_numeric(lake, clean):
    odd = clean.copy()
    odd.loc[[3, 30, 300], "amount_to_avg_ratio"] = np.nan
    rows = quarantined(lake, gate(lake, odd), 3, "expect_column_values_to_not_be_null")
    assert set(rows["transaction_id"]) == set(clean.loc[[3, 30, 300], "transaction_id"])


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_numeric(lake, clean, value):
    odd = clean.copy()
    odd.loc[[7, 8], "minutes_since_last_tx"] = value
    quarantined(lake, gate(lake, odd), 2, "expect_column_values_to_be_between(minutes_since")


def test_negative_amounts(lake, clean):
    odd = clean.copy()
    odd.loc[:9, "amount"] = -5.0
    rows = quarantined(lake, gate(lake, odd), 10, "expect_column_values_to_be_between(amount)")
    assert json.loads(rows["_offending_values"].iloc[0]) == {"amount": "-5.0"}


def test_out_of_range_values(lake, clean):
    odd = clean.copy()
    odd.loc[:2, "hour_of_day"] = 1e9
    quarantined(lake, gate(lake, odd), 3, "expect_column_values_to_be_between(hour_of_day)")


def test_unseen_categories_below_tolerance(lake, clean):
    odd = clean.copy()
    odd.loc[:9, "country"] = "XX"
    quarantined(lake, gate(lake, odd), 10, "expect_column_values_to_be_in_set(country)")


def test_timestamps_outside_the_partition_day(lake, clean):
    odd = clean.copy()
    odd.loc[:3, "event_time"] = pd.Timestamp("2025-12-31 23:00:00")
    odd.loc[4:5, "event_time"] = pd.Timestamp("2026-01-02 00:00:00")
    quarantined(lake, gate(lake, odd), 6, "expect_column_values_to_be_between(event_time)")


def test_megabyte_string_in_a_categorical(lake, clean):
    odd = clean.copy()
    odd.loc[0, "merchant_category"] = "x" * 1_000_000
    rows = quarantined(lake, gate(lake, odd), 1, "expect_column_values_to_be_in_set(merchant")
    assert len(json.loads(rows["_offending_values"].iloc[0])["merchant_category"]) == 200


def test_non_utf8_bytes_in_a_categorical(lake, clean):
    odd = clean.astype({"channel": object})
    odd.loc[:1, "channel"] = [b"\xff\xfeonline", b"caf\xe9"]
    storage, _ = lake
    table = pa.Table.from_pandas(
        odd.assign(channel=odd["channel"].map(lambda v: v if isinstance(v, bytes) else v.encode())),
        preserve_index=False,
    )
    storage.write_table(PARTITION, table)
    # A binary column is not text: refused on type, naming the column.
    refused_because(gate(lake), "column 'channel' has type")


def test_mixed_type_categorical(lake, clean):
    odd = clean.astype({"channel": object})
    odd.loc[:2, "channel"] = 42
    storage, _ = lake
    put(storage, odd.assign(channel=odd["channel"].astype(str)))
    quarantined(lake, gate(lake), 3, "expect_column_values_to_be_in_set(channel)")


def test_null_label_in_training_partition(lake, clean, settings):
    storage, _ = lake
    features, labels = generate_day(GeneratorConfig(rows_per_day=ROWS), 0)
    put(storage, features)
    labels = labels.astype({"is_fraud": "float64"})
    labels.loc[:4, "is_fraud"] = np.nan
    storage.write_table(
        f"transactions_labels/date=2026-01-02/part-{DAY}.parquet",
        pa.Table.from_pandas(labels, preserve_index=False),
    )
    report = gate(lake, purpose="training")
    quarantined(lake, report, 5, "expect_column_values_to_not_be_null(is_fraud)")


# --- files: a clear error, nothing read past it ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "case"),
    [
        (b"", "empty file"),
        (b"PAR1\x00\x00garbage that is not a parquet footer", "corrupt parquet"),
        (b"transaction_id;amount\n1;2.0\n", "CSV with the wrong delimiter, named .parquet"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not parquet at all"),
    ],
)
def test_unreadable_files_are_clear_errors(lake, tmp_path, content, case):
    target = tmp_path / "lake" / PARTITION
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    with pytest.raises(StorageError, match="is not a readable parquet file"):
        gate(lake)


def test_truncated_file(lake, clean, tmp_path):
    storage, _ = lake
    put(storage, clean)
    target = tmp_path / "lake" / PARTITION
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(StorageError, match="is not a readable parquet file"):
        gate(lake)


def test_partition_that_does_not_exist(lake):
    with pytest.raises(MissingDataError, match="No transactions partition for 2026-01-01"):
        gate(lake)


def test_path_escaping_the_storage_root(lake):
    with pytest.raises(StorageError, match="escapes the storage root"):
        lake[0].read_table("transactions/../../../etc")


# --- the generator's quality_faults days ---------------------------------------------------


def test_quality_fault_day_is_quarantined_to_the_row(lake):
    config = GeneratorConfig(scenario="quality_faults", days=6, rows_per_day=5_000)
    faulty, _ = generate_day(config, 3)
    report = gate(lake, faulty, day=config.day(3))
    expected_bad = (
        faulty["distance_from_home_km"].isna()
        | (faulty["amount"] < 0)
        | (faulty["merchant_category"] == "crypto_atm_unknown")
    )
    assert report.rows_quarantined == int(expected_bad.sum()) > 0
    assert report.rows_in == report.rows_passed + report.rows_quarantined == 5_000
    # The vectorised mask and GX agree on every row-level expectation.
    for outcome in report.expectations:
        if outcome.severity == "row":
            assert outcome.unexpected_count == outcome.gx_unexpected_count, outcome


def test_quality_fault_rename_day_is_refused_naming_the_column(lake):
    config = GeneratorConfig(scenario="quality_faults", days=6, rows_per_day=2_000)
    renamed, _ = generate_day(config, 5)
    report = gate(lake, renamed, day=config.day(5))
    refused_because(report, "missing columns ['amount']", "unexpected columns ['amt']")


# --- the committed suite is the source of truth --------------------------------------------


def test_editing_a_committed_bound_changes_the_outcome(lake, clean, tmp_path, monkeypatch):
    project = tmp_path / "expectations"
    shutil.copytree(lake[1].gate.expectations_dir, project)
    suite_file = project / "gx" / "expectations" / "transactions_inference.json"
    suite = json.loads(suite_file.read_text())
    for expectation in suite["expectations"]:
        if (
            expectation["type"] == "expect_column_values_to_be_between"
            and expectation["kwargs"]["column"] == "amount"
        ):
            expectation["kwargs"]["max_value"] = float(clean["amount"].quantile(0.99))
    suite_file.write_text(json.dumps(suite))
    assert gate(lake, clean).rows_quarantined == 0
    edited = (lake[0], lake[1].with_overrides(expectations_dir=project))
    report = gate(edited, clean)
    quarantined(
        lake,
        report,
        int((clean["amount"] > clean["amount"].quantile(0.99)).sum()),
        "expect_column_values_to_be_between(amount)",
    )


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    nulls=st.integers(0, 60),
    negatives=st.integers(0, 60),
    unseen=st.integers(0, 60),
    seed=st.integers(0, 1_000),
)
def test_rows_in_equals_rows_passed_plus_quarantined(lake, clean, nulls, negatives, unseen, seed):
    rng = np.random.default_rng(seed)
    odd = clean.copy()
    odd.loc[rng.choice(ROWS, nulls, replace=False), "distance_from_home_km"] = np.nan
    odd.loc[rng.choice(ROWS, negatives, replace=False), "amount"] = -1.0
    odd.loc[rng.choice(ROWS, unseen, replace=False), "device"] = "fax"
    report = gate(lake, odd)
    assert_accounted(report)
    settings = lake[1]
    masks = row_failures(
        pa.Table.from_pandas(odd, preserve_index=False),
        inferloop.tasks.gate.expectations.suite_definitions(settings.gate, settings.dataset, "inference"),
        {"partition_start": pd.Timestamp(DAY), "partition_end": pd.Timestamp("2026-01-02")},
    )
    bad = np.logical_or.reduce(list(masks.values()))
    if report.refused:
        assert unseen / ROWS > 0.02
    else:
        assert report.rows_quarantined == int(bad.sum())
        if report.rows_quarantined:
            assert len(quarantine(lake, report)) == report.rows_quarantined
