"""The data contract of one request, as the endpoint applies it: the spec's columns and types,
the committed inference suite's row checks (the gate's own functions), rows in = passed + rejected."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferloop.core.settings import load_settings
from inferloop.serving.contract import RequestContract, SchemaError, inference_expectations, parse_body
from tests.serving.conftest import feed_records


def typed(contract: RequestContract, columns: dict[str, list]):
    """One request's rows as the coalescing thread types them."""
    return contract.table([contract.checked(columns)])


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
    table = typed(contract, parse_body(json.dumps({"dataframe_records": rows}).encode(), 100))
    verdicts = contract.row_verdicts(table)
    assert table.num_rows == len(rows) == int((~verdicts.bad).sum()) + verdicts.rows_rejected
    for position, fault in enumerate(faults):
        assert (position in verdicts.failed) == (fault != "none"), fault


def test_a_rejected_row_names_every_check_it_failed(contract):
    row = {**ROWS[0], "amount": -1.0, "country": "Atlantis"}
    verdicts = contract.row_verdicts(typed(contract, parse_body(json.dumps({"inputs": [row]}).encode(), 10)))
    assert verdicts.failed == {
        0: ["expect_column_values_to_be_between(amount)", "expect_column_values_to_be_in_set(country)"]
    }


def test_times_with_a_zone_are_stored_in_utc(contract):
    row = {**ROWS[0], "event_time": "2026-01-06T13:30:00+01:00"}
    table = typed(contract, parse_body(json.dumps({"dataframe_records": [row]}).encode(), 10))
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
        typed(contract, parse_body(json.dumps({"dataframe_records": rows}).encode(), 10))


def test_the_model_input_is_what_batch_scoring_prepares(contract):
    from pandas.testing import assert_frame_equal

    from inferloop.tasks.data.feeds import prepare_features

    rows = [ROWS[0], {**ROWS[1], "amount": None, "country": None, "hour_of_day": 3}]
    table = typed(contract, parse_body(json.dumps({"dataframe_records": rows}).encode(), 10))
    prepared = prepare_features(table.to_pandas(), contract.spec)
    assert_frame_equal(contract.model_input(table), prepared)


def test_a_batch_of_requests_is_typed_as_their_rows_one_after_the_other(contract):
    import pyarrow as pa

    first, second = (
        parse_body(json.dumps({"dataframe_records": ROWS[a:b]}).encode(), 10) for a, b in ((0, 3), (3, 4))
    )
    batch = contract.table([contract.checked(first), contract.checked(second)])
    assert batch.equals(pa.concat_tables([typed(contract, first), typed(contract, second)]).combine_chunks())


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        ({"device": "\ud800"}, "device", "text that UTF-8 can encode"),  # JSON's lone surrogate
        (
            {"event_time": "0001-01-01T00:00:00+05:00"},
            "event_time",
            "an ISO 8601 time",
        ),  # before year 1 in UTC
    ],
)
def test_values_arrow_or_utc_cannot_hold_are_refused_with_the_request_alone(
    contract, change, column, expected
):
    body = json.dumps({"dataframe_records": [ROWS[0], {**ROWS[1], **change}]}).encode()
    with pytest.raises(SchemaError, match=rf"Column '{column}' .*\(row 1\): expected {expected}"):
        contract.checked(parse_body(body, 10))
