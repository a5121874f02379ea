"""The Open Inference Protocol (V2) request and answer: tensors to the contract's columns, clear
errors for what is not a tabular V2 request, one output element per row in request order; then
the real app in front of the session's MLflow server: the V2 health API before and after a model
is loaded, its keys, and a batch with bad rows answered in position.
(tests/serving/test_endpoint.py sends V2 requests to the endpoint as a process.)"""

import gc
import json
from dataclasses import dataclass

import numpy as np
import pytest

from inferloop.core.registry import ModelVersionRef
from inferloop.core.settings import load_settings
from inferloop.serving.batching import ScoredRequest
from inferloop.serving.contract import RequestContract, RequestError, RowVerdicts, SchemaError
from inferloop.serving.v2 import infer_answer, model_metadata, parse_infer_request, readiness
from tests.serving.conftest import feed_records, in_process_endpoint, unique_model_name, wait_until

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
    assert contract.table([contract.checked(request.columns)]).equals(
        contract.table([contract.checked(as_records)])
    )
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


def test_readiness_says_why_a_version_is_not_ready():
    from inferloop.serving.champion import FollowerState

    loading = FollowerState(False, None, False, None, "starting: @champion was not resolved yet")
    serving = FollowerState(True, "4", False, 0.5, None)
    assert readiness(loading) == {"ready": False, "error": "starting: @champion was not resolved yet"}
    assert readiness(serving, "m") == {"name": "m", "ready": True}
    assert readiness(serving, "m", "4") == {"name": "m", "version": "4", "ready": True}
    assert readiness(serving, "m", "3") == {
        "name": "m",
        "version": "3",
        "ready": False,
        "error": "Version 3 is not served here: version 4 is (@champion)",
    }


# -- the real app -----------------------------------------------------------------------------------


@dataclass
class Served:
    client: object  # starlette's TestClient on the real app
    model_name: str
    version: str
    keys: dict[str, str]  # scope -> a key with only that scope
    before_load: dict[str, object]  # path -> the answer before any champion existed
    frozen_before_load: int  # objects out of the garbage collector's view before a model loaded

    def infer(self, payload: dict, key: str | None = "score"):
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return self.client.post(f"/v2/models/{self.model_name}/infer", json=payload, headers=headers)


def health_paths(model_name: str) -> list[str]:
    return [
        "/v2/health/live",
        "/v2/health/ready",
        f"/v2/models/{model_name}/ready",
        f"/v2/models/{model_name}/versions/1/ready",
    ]


@pytest.fixture(scope="module")
def served(pool, mlflow_server, tmp_path_factory):
    """The app started for a model with no @champion yet (its health answers kept), then a copy
    of the pool's `before` made its champion, once it is loaded."""
    from inferloop.serving.keys import add_key
    from tests.fixtures.pool import register

    root = tmp_path_factory.mktemp("v2")
    name = unique_model_name("v2")
    keys = {scope: add_key(root / "keys.json", scope, [scope]) for scope in ("score", "admin")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERLOOP_STORAGE_URI", (root / "lake").as_uri())
        patch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
        patch.setenv("INFERLOOP_MODEL_NAME", name)
        with in_process_endpoint(root, patch, loaded=False) as client:
            before_load = {path: client.get(path) for path in health_paths(name)}
            frozen_before_load = gc.get_freeze_count()
            version = register(mlflow_server, pool.before, "champion", model_name=name)
            wait_until(
                lambda: client.get("/v2/health/ready").status_code == 200, 120, what="the champion loaded"
            )
            yield Served(client, name, version, keys, before_load, frozen_before_load)


@pytest.mark.slow
def test_v2_health_is_live_at_once_and_ready_once_a_model_is_loaded(served):
    name = served.model_name
    live, ready, model_ready, version_ready = (served.before_load[p] for p in health_paths(name))
    assert (live.status_code, live.json()) == (200, {"live": True})
    for answer in (ready, model_ready, version_ready):
        assert answer.status_code == 503 and answer.json()["ready"] is False
        assert answer.json()["error"]  # why: still starting, or no @champion yet
    assert model_ready.json()["name"] == name

    assert served.version == "1"  # the version the health paths ask about
    answers = {path: served.client.get(path) for path in health_paths(name)}
    assert {path: answer.status_code for path, answer in answers.items()} == dict.fromkeys(answers, 200)
    assert answers["/v2/health/ready"].json() == {"ready": True}
    assert answers[f"/v2/models/{name}/ready"].json() == {"name": name, "ready": True}
    assert served.client.get("/health/ready").json()["version"] == served.version  # the same model
    another = served.client.get(f"/v2/models/{name}/versions/2/ready")
    assert another.status_code == 503
    assert another.json()["error"] == "Version 2 is not served here: version 1 is (@champion)"


@pytest.mark.slow
def test_once_the_first_model_is_loaded_the_heap_is_frozen_and_young_collections_are_rarer(served):
    from inferloop.serving.app import YOUNG_COLLECTION_OBJECTS

    assert served.frozen_before_load == 0
    wait_until(lambda: gc.get_freeze_count() > 0, 60, what="the heap frozen after the first load")
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_OBJECTS


@pytest.mark.slow
def test_v2_model_ready_for_another_model_is_404_naming_the_one_served(served):
    for path in ("/v2/models/another-model/ready", "/v2/models/another-model/versions/1/ready"):
        answer = served.client.get(path)
        assert answer.status_code == 404
        assert f"serves {served.model_name!r}" in answer.json()["error"]


@pytest.mark.slow
def test_v2_health_takes_no_key_and_server_metadata_takes_the_score_scope(served):
    import inferloop

    # served.client sends no key: the health answers above came without one, as probes ask.
    assert served.client.get("/v2/health/ready", headers={"Authorization": "Bearer wrong"}).status_code == 200
    assert served.client.get("/v2").status_code == 401
    admin = served.client.get("/v2", headers={"Authorization": f"Bearer {served.keys['admin']}"})
    assert admin.status_code == 403 and "'score' scope" in admin.json()["error"]
    metadata = served.client.get("/v2", headers={"Authorization": f"Bearer {served.keys['score']}"})
    assert metadata.json() == {"name": "inferloop", "version": inferloop.__version__, "extensions": []}
    documented = served.client.get("/openapi.json").json()["paths"]
    assert {
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/versions/{version}/ready",
    } <= set(documented)


@pytest.mark.slow
def test_v2_rejected_rows_keep_their_position_with_null_score_and_label(served, contract):
    records = feed_records(5, first=450)
    records[1]["amount"] = None  # missing, where the suite expects a value
    records[3]["country"] = "Atlantis"  # a category the suite has never seen
    answer = served.infer({"inputs": v2_inputs(records, contract)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == served.version
    assert body["parameters"]["rows_in"] == 5 == len(records)
    assert body["parameters"]["rows_scored"] + body["parameters"]["rows_rejected"] == 5
    assert (body["parameters"]["rows_scored"], body["parameters"]["rows_rejected"]) == (3, 2)
    outputs = {tensor["name"]: tensor for tensor in body["outputs"]}
    assert all(tensor["shape"] == [5] and len(tensor["data"]) == 5 for tensor in outputs.values())
    ids, scores, labels, errors = (outputs[n]["data"] for n in ("id", "score", "label", "error"))
    assert ids == [r["transaction_id"] for r in records]
    rejected = [False, True, False, True, False]
    assert [score is None for score in scores] == [label is None for label in labels] == rejected
    assert errors[1] == "failed expect_column_values_to_not_be_null(amount)"
    assert errors[3] == "failed expect_column_values_to_be_in_set(country)"
    assert errors[0] == errors[2] == errors[4] == ""
    # The same rows through /invocations: the same scores, the same rows rejected.
    same = served.client.post(
        "/invocations",
        json={"dataframe_records": records},
        headers={"Authorization": f"Bearer {served.keys['score']}"},
    ).json()
    assert [p.get("score") for p in same["predictions"]] == scores
    # Asking for the scores alone still answers one element per row.
    only = served.infer({"inputs": v2_inputs(records, contract), "outputs": [{"name": "score"}]}).json()
    assert [tensor["name"] for tensor in only["outputs"]] == ["score"]
    assert only["outputs"][0]["data"] == scores
