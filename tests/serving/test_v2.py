"""The Open Inference Protocol (V2) request and answer: tensors to the contract's columns, clear
errors for what is not a tabular V2 request, one output element per row in request order.
(tests/serving/test_endpoint.py sends V2 requests to the real endpoint.)"""

import json

import numpy as np
import pytest

from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.serving.batching import ScoredRequest
from inferloop.serving.contract import RequestContract, RequestError, RowVerdicts, SchemaError
from inferloop.serving.v2 import infer_answer, model_metadata, parse_infer_request
from tests.serving.conftest import feed_records

RECORDS = feed_records(3)


@pytest.fixture(scope="module")
def contract():
    return RequestContract(load_settings().dataset, [])  # the spec's columns; no row checks needed here


def v2_inputs(records: list[dict], contract) -> list[dict]:
    """One tensor per column, declared as metadata says."""
    declared = {i["name"]: i["datatype"] for i in model_metadata("m", "1", contract.schema)["inputs"]}
    return [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": declared[name],
            "data": [r[name] for r in records],
        }
        for name in records[0]
    ]


def parse(payload, contract, max_rows: int = 100):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_infer_request(body, max_rows, contract.schema)


def test_tensors_become_the_same_rows_as_mlflow_records(contract):
    from inferloop.serving.contract import parse_body

    request = parse({"id": "req-7", "inputs": v2_inputs(RECORDS, contract)}, contract)
    as_records = parse_body(json.dumps({"dataframe_records": RECORDS}).encode(), 100)
    assert contract.typed(request.columns).equals(contract.typed(as_records))
    assert request.id == "req-7" and request.outputs == ["id", "score", "label", "error"]


def test_a_column_shaped_rows_by_one_is_read_as_a_column(contract):
    inputs = v2_inputs(RECORDS, contract)
    inputs[0] = {**inputs[0], "shape": [3, 1], "data": [[v] for v in inputs[0]["data"]]}
    assert parse({"inputs": inputs}, contract).columns[inputs[0]["name"]] == [
        r[inputs[0]["name"]] for r in RECORDS
    ]


def change(contract, position: int, **fields):
    inputs = v2_inputs(RECORDS, contract)
    inputs[position] = {**inputs[position], **fields}
    return {"inputs": inputs}


BAD = {
    "no inputs": (lambda c: {"inputs": []}, RequestError, "non-empty list"),
    "unknown field": (lambda c: {"inputs": v2_inputs(RECORDS, c), "model": "x"}, RequestError, "['model']"),
    "unknown input": (lambda c: change(c, 0, name="is_fraud"), SchemaError, "Unknown input 'is_fraud'"),
    "not a V2 datatype": (lambda c: change(c, 0, datatype="FLOAT"), RequestError, "V2 datatypes are"),
    "a number declared as text": (
        lambda c: change(c, 2, datatype="BYTES"),
        SchemaError,
        "is declared BYTES: send it as FP64",
    ),
    "a matrix": (lambda c: change(c, 0, shape=[1, 3]), RequestError, "[rows] or [rows, 1]"),
    "shape and data disagree": (
        lambda c: change(c, 0, shape=[4]),
        RequestError,
        "holds 3 values for shape [4]",
    ),
    "ragged columns": (
        lambda c: change(c, 2, shape=[2], data=[1.0, 2.0]),
        RequestError,
        "first dimensions differ",
    ),
    "unknown output": (
        lambda c: {"inputs": v2_inputs(RECORDS, c), "outputs": [{"name": "proba"}]},
        RequestError,
        "Unknown output(s) ['proba']",
    ),
    "not JSON": (lambda c: b"{inputs", RequestError, "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_what_is_not_a_tabular_v2_request_is_refused_saying_what_to_fix(contract, case):
    payload, error, message = BAD[case]
    with pytest.raises(error) as raised:
        parse(payload(contract), contract)
    assert message in str(raised.value)


def test_too_many_rows_is_413(contract):
    with pytest.raises(RequestError) as raised:
        parse({"inputs": v2_inputs(RECORDS, contract)}, contract, max_rows=2)
    assert raised.value.status == 413


def test_the_answer_has_an_element_per_row_and_a_rejected_row_says_why(contract):
    request = parse(
        {"inputs": v2_inputs(RECORDS, contract), "outputs": [{"name": "score"}, {"name": "error"}]}, contract
    )
    scored = ScoredRequest(
        ModelVersionRef("m", "4", "run"),
        RowVerdicts(np.array([False, True, False]), {1: ["expect_column_values_to_be_between(amount)"]}),
        np.array([0.25, 0.75]),
        np.array([0, 1], dtype=np.int8),
    )
    answer = infer_answer(scored, [10, 11, 12], request, "abc")
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("m", "4", "abc")
    assert answer["parameters"] == {"request_id": "abc", "rows_in": 3, "rows_scored": 2, "rows_rejected": 1}
    score, error = answer["outputs"]
    assert score == {"name": "score", "datatype": "FP64", "shape": [3], "data": [0.25, None, 0.75]}
    assert error["data"] == ["", "failed expect_column_values_to_be_between(amount)", ""]
