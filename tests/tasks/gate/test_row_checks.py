"""The quarantine mask (tasks/gate/row_checks.py) on small Arrow tables, from the same
expectation definitions GX runs: which rows fail, and how the failures are described."""

import json
from datetime import datetime

import great_expectations.expectations as gxe
import pyarrow as pa
import pytest

from inferloop.core.errors import InferloopError
from inferloop.tasks.gate.expectations import critical, row_level
from inferloop.tasks.gate.row_checks import (
    OFFENDING_VALUE_CHARS,
    any_failed,
    count,
    describe_failed_rows,
    expectation_name,
    row_failures,
)


def configs(*expectations) -> list:
    return [e.configuration for e in expectations]


def failing_rows(data: pa.Table, expectation, parameters: dict | None = None) -> list[bool]:
    (mask,) = row_failures(data, configs(expectation), parameters or {}).values()
    return mask.to_pylist()


def test_a_null_or_nan_fails_not_null():
    data = pa.table({"amount": pa.array([1.0, None, float("nan"), 0.0])})
    assert failing_rows(data, row_level(gxe.ExpectColumnValuesToNotBeNull, column="amount")) == [
        False,
        True,
        True,
        False,
    ]


def test_bounds_are_inclusive_unless_strict_and_a_missing_value_is_not_out_of_range():
    data = pa.table({"amount": pa.array([-1.0, 0.0, 5.0, 10.0, 11.0, None])})
    inclusive = row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0, max_value=10.0)
    assert failing_rows(data, inclusive) == [True, False, False, False, True, False]
    strict = row_level(
        gxe.ExpectColumnValuesToBeBetween,
        column="amount",
        min_value=0.0,
        max_value=10.0,
        strict_min=True,
        strict_max=True,
    )
    assert failing_rows(data, strict) == [True, True, False, True, True, False]
    only_low = row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0)
    assert failing_rows(data, only_low) == [True, False, False, False, False, False]


def test_suite_parameters_bound_timestamps():
    data = pa.table({"event_time": pa.array([datetime(2026, 1, 1, 12), datetime(2026, 1, 2, 0, 0, 1)])})
    within_day = row_level(
        gxe.ExpectColumnValuesToBeBetween,
        column="event_time",
        min_value={"$PARAMETER": "start"},
        max_value={"$PARAMETER": "end"},
    )
    parameters = {"start": datetime(2026, 1, 1), "end": datetime(2026, 1, 1, 23, 59, 59)}
    assert failing_rows(data, within_day, parameters) == [False, True]


def test_values_that_cannot_be_compared_all_fail():
    data = pa.table({"amount": pa.array(["12.5", None, "abc"])})
    bounded = row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0, max_value=10.0)
    assert failing_rows(data, bounded) == [True, False, True]  # present but not numbers


@pytest.mark.parametrize("encode", [False, True], ids=["plain", "dictionary"])
def test_a_value_outside_the_set_fails_for_plain_and_dictionary_columns(encode):
    values = pa.array(["pos", "online", "teleport", None, "teleport"])
    data = pa.table({"channel": values.dictionary_encode() if encode else values})
    in_set = row_level(gxe.ExpectColumnValuesToBeInSet, column="channel", value_set=["pos", "online"])
    assert failing_rows(data, in_set) == [False, False, True, False, True]


def test_a_set_of_another_type_fails_every_present_value():
    data = pa.table({"device": pa.array([1, 2, None])})
    in_set = row_level(gxe.ExpectColumnValuesToBeInSet, column="device", value_set=["mobile"])
    assert failing_rows(data, in_set) == [True, True, False]


def test_only_row_level_expectations_of_present_columns_make_masks():
    data = pa.table({"amount": pa.array([1.0, -1.0])})
    masks = row_failures(
        data,
        configs(
            critical(gxe.ExpectColumnValuesToNotBeNull, column="amount"),  # refuses, never quarantines
            row_level(gxe.ExpectColumnValuesToNotBeNull, column="channel"),  # the schema check names it
            row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0),
        ),
        {},
    )
    assert list(masks) == ["expect_column_values_to_be_between(amount)"]


def test_an_expectation_without_a_row_check_cannot_be_row_level():
    unique = row_level(gxe.ExpectColumnValuesToBeUnique, column="transaction_id")
    with pytest.raises(InferloopError, match=r"set meta\.severity to critical"):
        row_failures(pa.table({"transaction_id": [1, 1]}), configs(unique), {})


def test_a_row_failing_any_check_is_bad_and_counted_once():
    data = pa.table({"amount": pa.array([-1.0, None, 3.0]), "channel": pa.array(["x", "pos", "x"])})
    masks = row_failures(
        data,
        configs(
            row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0),
            row_level(gxe.ExpectColumnValuesToNotBeNull, column="amount"),
            row_level(gxe.ExpectColumnValuesToBeInSet, column="channel", value_set=["pos"]),
        ),
        {},
    )
    bad = any_failed(masks, data.num_rows)
    assert bad.to_pylist() == [True, True, True] and count(bad) == 3
    assert count(masks["expect_column_values_to_be_in_set(channel)"]) == 2
    assert any_failed({}, 2).to_pylist() == [False, False]


def test_failed_rows_name_what_they_failed_and_their_offending_values():
    long_value = "z" * (OFFENDING_VALUE_CHARS * 5)
    data = pa.table(
        {"id": [1, 2, 3], "amount": pa.array([-1.0, 2.0, None]), "channel": ["x", "pos", long_value]}
    )
    expectations = configs(
        row_level(gxe.ExpectColumnValuesToBeBetween, column="amount", min_value=0.0),
        row_level(gxe.ExpectColumnValuesToNotBeNull, column="amount"),
        row_level(gxe.ExpectColumnValuesToBeInSet, column="channel", value_set=["pos"]),
    )
    masks = row_failures(data, expectations, {})
    rows = describe_failed_rows(
        data, {expectation_name(c): c for c in expectations}, masks, any_failed(masks, data.num_rows)
    )
    assert rows["id"].tolist() == [1, 3]  # the passing row is not described
    assert rows["_failed_expectations"].tolist() == [
        "expect_column_values_to_be_between(amount); expect_column_values_to_be_in_set(channel)",
        "expect_column_values_to_not_be_null(amount); expect_column_values_to_be_in_set(channel)",
    ]
    first, third = (json.loads(v) for v in rows["_offending_values"])
    assert first == {"amount": "-1.0", "channel": "x"}
    assert third == {"amount": None, "channel": "z" * OFFENDING_VALUE_CHARS}
