"""Applying a spec to raw rows: types, bad rows with their reasons, and no row lost or doubled."""

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferloop.core.dataset import DatasetSpec
from inferloop.tasks.data.conform import REASONS, SOURCE_ROW, IdTypeError, conform_rows, lake_ids, parse_times


def make_spec(**changes) -> DatasetSpec:
    raw = {
        "name": "feed",
        "id_column": "id",
        "time_column": "ts",
        "label": {"column": "y", "positive": 1, "classes": [0, 1]},
        "features": {"amount": "numeric", "shop": "categorical"},
    }
    return DatasetSpec.model_validate(raw | changes)


def frame(**columns) -> pd.DataFrame:
    defaults = {"id": "a", "ts": "2026-01-01 10:00", "amount": "1.5", "shop": "s1", "y": "1"}
    rows = max(len(v) for v in columns.values())
    return pd.DataFrame({name: columns.get(name, [value] * rows) for name, value in defaults.items()})


def test_a_time_format_parses_and_an_unparseable_time_is_quarantined():
    spec = make_spec(time_format="%d/%m/%Y %H:%M")
    conformed = conform_rows(frame(ts=["02/01/2026 10:30", "2026-01-02", None]), spec)
    assert conformed.rows["ts"].tolist() == [pd.Timestamp("2026-01-02 10:30")]
    assert conformed.quarantined[REASONS].tolist() == [
        "ts: not a time in format '%d/%m/%Y %H:%M' ('2026-01-02')",
        "ts: missing",
    ]
    assert conformed.quarantined[SOURCE_ROW].tolist() == [1, 2]


def test_times_with_an_offset_are_stored_in_utc_without_a_zone():
    conformed = conform_rows(
        frame(ts=["2026-01-01T10:00:00+02:00", "2026-01-01T08:00:00+00:00"]), make_spec()
    )
    assert conformed.rows["ts"].tolist() == [pd.Timestamp("2026-01-01 08:00")] * 2
    assert str(conformed.rows["ts"].dtype) == "datetime64[ns]"


def test_an_integer_label_is_parsed_and_checked_against_the_classes():
    conformed = conform_rows(frame(id=list("abcde"), y=["1", "0", "2", "yes", None]), make_spec())
    assert conformed.rows["y"].tolist() == [1, 0] and conformed.rows["y"].dtype == "int64"
    assert conformed.quarantined[REASONS].tolist() == [
        "y: not one of [0, 1] ('2')",
        "y: not an integer ('yes')",
        "y: missing",
    ]
    assert conformed.reasons == {"y: not one of [0, 1]": 1, "y: not an integer": 1, "y: missing": 1}


def test_a_boolean_label_reads_true_and_false():
    spec = make_spec(label={"column": "y", "positive": True})
    conformed = conform_rows(frame(id=list("abc"), y=["true", "FALSE", "maybe"]), spec)
    assert conformed.rows["y"].tolist() == [True, False]
    assert conformed.quarantined[REASONS].tolist() == ["y: not true or false ('maybe')"]


def test_features_are_typed_and_a_missing_value_is_left_to_the_gate():
    conformed = conform_rows(
        frame(id=list("abcd"), amount=["2", " ", None, "x"], shop=[3, None, "s", "t"]), make_spec()
    )
    assert conformed.rows["amount"].tolist()[0] == 2.0 and conformed.rows["amount"].isna().tolist() == [
        False,
        True,
        True,
    ]
    assert conformed.rows["shop"].tolist()[0] == "3" and pd.isna(conformed.rows["shop"].iloc[1])
    assert conformed.quarantined[REASONS].tolist() == ["amount: not a number ('x')"]


def test_a_row_without_an_id_is_quarantined():
    conformed = conform_rows(frame(id=["a", None, ""]), make_spec())
    assert conformed.rows["id"].tolist() == ["a"]
    assert conformed.reasons == {"id: missing": 2}


TEXT = st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["0", "1", "2.5", "1e3", "-0", "inf"]))


@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=30))
def test_every_row_is_written_or_quarantined_exactly_once(values):
    spec = make_spec(
        generate_id=True, id_column="row", time_from_row_order={"start": "2026-01-01", "step": "1h"}
    )
    amount, shop, label = (list(column) for column in zip(*values, strict=True))
    raw = pd.DataFrame({"amount": amount, "shop": shop, "y": label})
    conformed = conform_rows(raw, spec)
    written, quarantined = conformed.rows["row"].tolist(), conformed.quarantined[SOURCE_ROW].tolist()
    assert sorted(written + quarantined) == list(range(len(raw)))
    assert set(conformed.rows["y"]) <= {0, 1}


def test_iso_8601_times_of_mixed_precision_and_offsets_all_parse():
    """What Python's isoformat() writes: no fraction when the microseconds are 0, so a file's
    first row need not look like the others; offsets differ from row to row."""
    times = [
        "2026-01-01T10:00:00",  # naive: taken as UTC
        "2026-01-01T10:00:00.250000",
        "2026-01-01T12:00:00.5+02:00",
        "2026-01-01T04:30:00-05:30",
        "2026-01-01T10:00:00Z",
        "2026-01-01 10:00",
    ]
    conformed = conform_rows(frame(id=[str(i) for i in range(len(times))], ts=times), make_spec())
    assert len(conformed.quarantined) == 0
    assert conformed.rows["ts"].tolist() == [
        pd.Timestamp("2026-01-01 10:00"),
        pd.Timestamp("2026-01-01 10:00:00.25"),
        pd.Timestamp("2026-01-01 10:00:00.5"),
        pd.Timestamp("2026-01-01 10:00"),
        pd.Timestamp("2026-01-01 10:00"),
        pd.Timestamp("2026-01-01 10:00"),
    ]
    assert str(conformed.rows["ts"].dtype) == "datetime64[ns]"


def test_times_that_are_not_iso_8601_still_parse_in_one_inferred_layout():
    conformed = conform_rows(
        frame(id=list("abc"), ts=["01/02/2026 10:00", "01/03/2026 11:00", "x"]), make_spec()
    )
    assert conformed.rows["ts"].tolist() == [
        pd.Timestamp("2026-01-02 10:00"),
        pd.Timestamp("2026-01-03 11:00"),
    ]
    assert conformed.quarantined[REASONS].tolist() == ["ts: not a time ('x')"]


def test_parse_times_keeps_typed_times_and_reads_text_value_by_value():
    typed = pd.Series(pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00"]))
    assert parse_times(typed).dt.tz_localize(None).tolist() == typed.tolist()
    mixed = pd.Series(["2026-01-01T10:00:00+01:00", "2026-01-01T10:00:00.000001", None, "soon"])
    parsed = parse_times(mixed)
    assert parsed.iloc[0] == pd.Timestamp("2026-01-01 09:00", tz="UTC")
    assert parsed.iloc[1] == pd.Timestamp("2026-01-01 10:00:00.000001", tz="UTC")
    assert parsed.iloc[2:].isna().all()


def test_text_ids_are_kept_exactly_as_the_source_wrote_them():
    ids = ["007", "123.0", "tx-17", "18446744073709551616", "-5"]
    conformed = conform_rows(frame(id=ids), make_spec())
    assert conformed.rows["id"].tolist() == ids and len(conformed.quarantined) == 0


@pytest.mark.parametrize(
    ("ids", "expected", "dtype"),
    [
        (pd.Series([1, 2, 3], dtype="int32"), [1, 2, 3], "int64"),
        (pd.Series([2**64 - 1, 2**63, 5], dtype="uint64"), [str(2**64 - 1), str(2**63), "5"], "object"),
        (pd.Series([7, 8, 9], dtype="uint16"), [7, 8, 9], "int64"),
        (pd.Series([1.0, None, 3.0]), [1, pd.NA, 3], "Int64"),
        (pd.Series(["a", None, "c"], dtype="string"), ["a", None, "c"], "object"),
        (pd.Series(["x", "y", "x"], dtype="category"), ["x", "y", "x"], "object"),
    ],
)
def test_typed_ids_become_int64_or_exact_text(ids, expected, dtype):
    kept = lake_ids(ids, "id")
    assert [None if pd.isna(v) else v for v in kept.tolist()] == [
        None if v is pd.NA or v is None else v for v in expected
    ]
    assert str(kept.dtype) == dtype


@pytest.mark.parametrize(
    ("ids", "shown"),
    [
        (pd.Series([1.5, 2.0]), "float64 values (1.5)"),
        (pd.Series([float(2**60), 1.0]), "float64 values"),
        (pd.Series([True, False]), "bool values (True, False)"),
        (pd.Series(pd.to_datetime(["2026-01-01"])), "datetime64[ns] values"),
    ],
)
def test_ids_that_are_neither_integers_nor_text_are_refused_with_what_to_do(ids, shown):
    with pytest.raises(IdTypeError, match="generate_id: true") as refused:
        conform_rows(
            pd.DataFrame({"id": ids}).join(frame(id=["a"] * len(ids)).drop(columns="id")), make_spec()
        )
    assert shown in str(refused.value) and "'id'" in str(refused.value)
