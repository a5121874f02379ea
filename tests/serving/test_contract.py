"""The data contract of one request, as the endpoint applies it: the spec's columns and types,
the committed inference suite's row checks (the gate's own functions), rows in = passed + rejected."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferloop.core.settings import load_settings
from inferloop.serving.contract import RequestContract, SchemaError, inference_expectations, parse_body
from tests.serving.conftest import feed_records


@pytest.fixture(scope="module")
def contract():
    loaded = load_settings()
    return RequestContract(loaded.dataset, inference_expectations(loaded.dataset, loaded.gate))


ROWS = feed_records(40)
FAULTS = {
    "none": lambda row: row,
    "negative amount": lambda row: {**row, "amount": -5.0},
    "unseen category": lambda row: {**row, "channel": "carrier-pigeon"},
    "no amount": lambda row: {**row, "amount": None},
    "no time": lambda row: {**row, "event_time": None},
    "infinite": lambda row: {**row, "distance_from_home_km": float("inf")},
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=40))
def test_rows_in_equal_rows_passed_plus_rows_rejected(contract, faults):
    rows = [FAULTS[fault](row) for fault, row in zip(faults, ROWS, strict=False)]
    table = contract.typed(parse_body(json.dumps({"dataframe_records": rows}).encode(), 100))
    verdicts = contract.row_verdicts(table)
    assert table.num_rows == len(rows) == int((~verdicts.bad).sum()) + verdicts.rows_rejected
    for position, fault in enumerate(faults):
        assert (position in verdicts.failed) == (fault != "none"), fault


def test_a_rejected_row_names_every_check_it_failed(contract):
    row = {**ROWS[0], "amount": -1.0, "country": "Atlantis"}
    verdicts = contract.row_verdicts(contract.typed(parse_body(json.dumps({"inputs": [row]}).encode(), 10)))
    assert verdicts.failed == {
        0: ["expect_column_values_to_be_between(amount)", "expect_column_values_to_be_in_set(country)"]
    }


def test_times_with_a_zone_are_stored_in_utc(contract):
    row = {**ROWS[0], "event_time": "2026-01-06T13:30:00+01:00"}
    table = contract.typed(parse_body(json.dumps({"dataframe_records": [row]}).encode(), 10))
    assert table.column("event_time")[0].as_py().isoformat() == "2026-01-06T12:30:00"


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"amount": True}, "amount"),
        ({"transaction_id": 1.5}, "transaction_id"),
        ({"device": ["a"]}, "device"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_column_and_row(contract, change, column):
    rows = [ROWS[0], {**ROWS[1], **change}]
    with pytest.raises(SchemaError, match=rf"Column '{column}' .*\(row 1\)"):
        contract.typed(parse_body(json.dumps({"dataframe_records": rows}).encode(), 10))


def test_the_model_input_is_what_batch_scoring_prepares(contract):
    from pandas.testing import assert_frame_equal

    from inferloop.tasks.data.feeds import prepare_features

    rows = [ROWS[0], {**ROWS[1], "amount": None, "country": None, "hour_of_day": 3}]
    table = contract.typed(parse_body(json.dumps({"dataframe_records": rows}).encode(), 10))
    prepared = prepare_features(table.to_pandas(), contract.spec)
    assert_frame_equal(contract.model_input(table), prepared)
