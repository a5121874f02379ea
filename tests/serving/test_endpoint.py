"""`inferloop serve` against a real MLflow server: MLflow's request formats, API keys, the data
contract per request, coalescing, health and metrics. One server for the module."""

import concurrent.futures
import math

import pyarrow.parquet as pq
import pytest

from tests.fixtures.pool import register
from tests.serving.conftest import (
    feed_records,
    start_endpoint,
    unique_model_name,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.slow
OWN_THRESHOLD = 0.001  # the served version's decision threshold (a version tag)


@pytest.fixture(scope="module")
def endpoint(pool, mlflow_server, tmp_path_factory):
    from mlflow import MlflowClient

    from inferloop.core.registry import THRESHOLD_TAG

    name = unique_model_name("serve")
    version = register(mlflow_server, pool.before, "champion", model_name=name)
    # A threshold of the version's own, far from the settings' 0.5: the endpoint labels with it.
    MlflowClient(mlflow_server).set_model_version_tag(name, version, THRESHOLD_TAG, str(OWN_THRESHOLD))
    # --verbose: uvicorn's line per request is on, for test_nothing_secret_reaches_the_log to read
    served = start_endpoint(tmp_path_factory.mktemp("serve"), mlflow_server, name, {"INFERLOOP_VERBOSE": "1"})
    served.version = version
    wait_ready(served, version)
    yield served
    served.stop()


def columns_of(records: list[dict]) -> dict:
    return {"columns": list(records[0]), "data": [list(r.values()) for r in records]}


# -- MLflow's formats --------------------------------------------------------------------------------


def test_every_mlflow_format_scores_the_same_rows_alike(endpoint):
    records = feed_records(5)
    answers = [
        endpoint.post({"dataframe_records": records}),
        endpoint.post({"dataframe_split": columns_of(records)}),
        endpoint.post({"inputs": records}),
        endpoint.post({"inputs": {c: [r[c] for r in records] for c in records[0]}}),
    ]
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    first = bodies[0]
    assert first["model_name"] == endpoint.model_name
    assert first["model_version"] == endpoint.version
    assert first["rows_in"] == first["rows_scored"] == 5 and first["rows_rejected"] == 0
    assert [p["id"] for p in first["predictions"]] == [r["transaction_id"] for r in records]
    for row in first["predictions"]:
        assert 0.0 <= row["score"] <= 1.0
        assert row["label"] == int(row["score"] >= OWN_THRESHOLD)  # the version's, not the setting's
    assert any(row["label"] != int(row["score"] >= 0.5) for row in first["predictions"])
    for body in bodies[1:]:
        assert [p["score"] for p in body["predictions"]] == [p["score"] for p in first["predictions"]]
    assert len({b["request_id"] for b in bodies}) == 4
    assert answers[0].headers["X-Request-ID"] == first["request_id"]


def test_scores_match_the_registered_model_scored_in_batch(endpoint, mlflow_server):
    """The endpoint scores with the version it names, as batch scoring would."""
    import pandas as pd

    from inferloop.core.registry import Registry
    from inferloop.core.settings import load_settings
    from inferloop.tasks.data.feeds import prepare_features
    from inferloop.tasks.model.prediction import positive_scores

    records = feed_records(20, first=100)
    body = endpoint.post({"dataframe_records": records}).json()
    registry = Registry(mlflow_server, endpoint.model_name)
    model = registry.load_model(registry.get_version(body["model_version"]))
    spec = load_settings().dataset
    expected = positive_scores(model, prepare_features(pd.DataFrame(records), spec))
    assert [p["score"] for p in body["predictions"]] == pytest.approx(expected.tolist(), abs=1e-12)


# -- authentication ------------------------------------------------------------------------------------


def test_no_key_is_401_and_a_wrong_key_is_401(endpoint):
    payload = {"dataframe_records": feed_records(1)}
    missing = endpoint.post(payload, key=None)
    wrong = endpoint.post(payload, key="il_" + "x" * 43)
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]
    assert "not valid" in wrong.json()["error"]


def test_a_key_without_the_scope_is_403(endpoint):
    refused = endpoint.post({"dataframe_records": feed_records(1)}, key="admin")
    assert refused.status_code == 403
    assert "'score' scope" in refused.json()["error"]
    assert endpoint.get("/metrics", key="score").status_code == 403
    assert endpoint.get("/metrics", key=None).status_code == 401


def test_keys_are_stored_hashed(endpoint):
    stored = (endpoint.log.parent / "keys.json").read_text()
    assert endpoint.score_key not in stored and endpoint.admin_key not in stored


# -- the data contract ------------------------------------------------------------------------------------


def test_bad_rows_are_rejected_naming_the_check_while_the_others_are_scored(endpoint):
    records = feed_records(4, first=10)
    records[1]["amount"] = float("inf")  # JSON Infinity: outside the suite's bounds
    records[2]["country"] = "Atlantis"  # a category the suite has never seen
    records[3]["amount"] = None  # missing, where the suite expects a value
    body = endpoint.post(
        content=_python_json({"dataframe_records": records}),
        headers={"Content-Type": "application/json"},
    ).json()
    assert body["rows_in"] == 4 == body["rows_scored"] + body["rows_rejected"]
    assert body["rows_scored"] == 1 and body["rows_rejected"] == 3
    first, inf, atlantis, missing = body["predictions"]
    assert "score" in first
    assert inf["failed_checks"] == ["expect_column_values_to_be_between(amount)"]
    assert atlantis["failed_checks"] == ["expect_column_values_to_be_in_set(country)"]
    assert missing["failed_checks"] == ["expect_column_values_to_not_be_null(amount)"]
    assert "score" not in inf and inf["error"].startswith("failed expect_column_values_to_be_between")
    assert [p["id"] for p in body["predictions"]] == [r["transaction_id"] for r in records]


def _python_json(payload) -> bytes:
    import json

    # Python writes Infinity / NaN, as many JSON encoders do, and escapes a lone surrogate.
    return json.dumps(payload).encode()


def _row(**changes):
    return [{**feed_records(1, first=50)[0], **changes}]


BAD_REQUESTS = {
    "malformed JSON": (b'{"dataframe_records": [', 400, "not valid JSON"),
    "unknown format": ({"instances": _row()}, 400, "Unknown field(s) ['instances']"),
    "two formats": ({"inputs": _row(), "dataframe_records": _row()}, 400, "exactly one of"),
    "missing column": (
        {"dataframe_records": [{k: v for k, v in _row()[0].items() if k != "amount"}]},
        400,
        "Missing column 'amount'",
    ),
    "unknown column": ({"dataframe_records": _row(is_fraud=1)}, 400, "Unknown column 'is_fraud'"),
    "wrong type (string for a number)": ({"dataframe_records": _row(amount="12.5")}, 400, "Column 'amount'"),
    "wrong type (number for a category)": ({"dataframe_records": _row(channel=3)}, 400, "Column 'channel'"),
    "unreadable time": ({"dataframe_records": _row(event_time="yesterday")}, 400, "Column 'event_time'"),
    "no id": ({"dataframe_records": _row(transaction_id=None)}, 400, "Column 'transaction_id'"),
    "duplicated id": ({"dataframe_records": _row() * 2}, 400, "twice"),
    "empty body": (b"", 400, "body is empty"),
    "zero rows": ({"dataframe_records": []}, 400, "no rows"),
    "not an object": (b"[1, 2]", 400, "must be a JSON object"),
    "ragged dataframe_split": (
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}},
        400,
        "has 1 values for 2 columns",
    ),
    "unknown field in dataframe_split": (
        {"dataframe_split": {"columns": [], "data": [], "dtypes": {}}},
        400,
        "Unknown field(s) ['dtypes']",
    ),
    "huge string": ({"dataframe_records": _row(country="x" * 100_000)}, 400, "100000 characters"),
    "non-UTF-8 bytes": (b'{"dataframe_records": [{"country": "\xff\xfe"}]}', 400, "not UTF-8"),
    "lone surrogate": (
        _python_json({"dataframe_records": _row(device="\ud800")}),
        400,
        "Column 'device'",
    ),
    "time before year 1 in UTC": (
        {"dataframe_records": _row(event_time="0001-01-01T00:00:00+05:00")},
        400,
        "Column 'event_time'",
    ),
    "wrong content type": ("csv", 415, "send application/json"),
    "too many rows": ({"dataframe_records": _row() * 10_001}, 413, "INFERLOOP_SERVE_MAX_REQUEST_ROWS"),
    "too many bytes": (b"{" + b" " * (9 * 1024 * 1024) + b"}", 413, "INFERLOOP_SERVE_MAX_BODY_BYTES"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_is_a_clear_4xx_never_a_500(endpoint, case):
    payload, status, message = BAD_REQUESTS[case]
    if payload == "csv":
        answer = endpoint.post(content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    elif isinstance(payload, bytes):
        answer = endpoint.post(content=payload, headers={"Content-Type": "application/json"})
    else:
        answer = endpoint.post(payload)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert message in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert body["request_id"] and answer.headers["X-Request-ID"] == body["request_id"]


# -- health, metrics, documentation ------------------------------------------------------------------------


def test_health_and_openapi(endpoint):
    assert endpoint.get("/health/live").json() == {"live": True}
    ready = endpoint.get("/health/ready").json()
    assert ready["ready"] is True and ready["version"] == endpoint.version and ready["stale"] is False
    spec = endpoint.get("/openapi.json").json()
    assert "/invocations" in spec["paths"]
    assert "dataframe_split" in str(spec["paths"]["/invocations"]["post"]["requestBody"])
    assert spec["paths"]["/invocations"]["post"]["security"] == [{"HTTPBearer": []}]
    assert endpoint.get("/docs").status_code == 200


def test_concurrent_requests_are_coalesced_and_metrics_count_them(endpoint):
    records = feed_records(64, first=200)
    before = _metrics(endpoint)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda r: endpoint.post({"dataframe_records": [r]}), records))
    assert all(a.status_code == 200 for a in answers)
    assert endpoint.post({"dataframe_records": records[:1]}, key=None).status_code == 401
    after = _metrics(endpoint)
    requests = after["inferloop_serve_batch_requests_count"] - before.get(
        "inferloop_serve_batch_requests_count", 0
    )
    coalesced = after["inferloop_serve_batch_requests_sum"] - before.get(
        "inferloop_serve_batch_requests_sum", 0
    )
    assert coalesced == 64
    assert requests < 64, "no predict call served more than one request"
    assert (
        after['inferloop_serve_requests_total{status="200"}']
        - before.get('inferloop_serve_requests_total{status="200"}', 0)
        == 64
    )
    assert (
        after[f'inferloop_serve_model_info{{model="{endpoint.model_name}",version="{endpoint.version}"}}']
        == 1
    )
    assert after["inferloop_serve_request_seconds_count"] >= 64
    assert (
        after['inferloop_serve_requests_total{status="401"}']
        - before.get('inferloop_serve_requests_total{status="401"}', 0)
        == 1
    )


def _metrics(endpoint) -> dict[str, float]:
    text = endpoint.get("/metrics", key="admin").text
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_scored_rows_reach_the_lake_with_their_version_and_request(endpoint):
    records = feed_records(7, first=300)
    body = endpoint.post({"dataframe_records": records}).json()

    def written():
        files = [p for p in endpoint.lake.rglob("*.parquet") if not p.name.startswith(".")]
        if not files:
            return None
        table = pq.ParquetDataset(files).read().to_pandas()
        mine = table[table["request_id"] == body["request_id"]]
        return mine if len(mine) == 7 else None

    rows = wait_until(written, 30, what="the request's rows in the lake")
    by_id = rows.set_index("transaction_id")
    for prediction in body["predictions"]:
        stored = by_id.loc[prediction["id"]]
        assert math.isclose(stored["score"], prediction["score"])
        assert stored["predicted_label"] == prediction["label"]
        assert stored["model_version"] == body["model_version"]
    # the runtime that scored them, as the server named it when it loaded the version
    (runtime,) = set(rows["runtime"])
    assert f"v{body['model_version']} ({runtime})" in endpoint.log.read_text()
    day = records[0]["event_time"][:10]
    partition = endpoint.lake / "online" / "predictions" / f"model={endpoint.model_name}" / f"date={day}"
    assert partition.is_dir()
    assert set(rows.columns) >= {"transaction_id", "event_time", "amount", "country", "scored_at"}


def test_nothing_secret_reaches_the_log(endpoint):
    endpoint.post({"dataframe_records": _row(country="SECRET-COUNTRY-VALUE")})
    log = endpoint.log.read_text()
    assert "POST /invocations" in log  # the access log is on (--verbose)
    for secret in (endpoint.score_key, endpoint.admin_key, "SECRET-COUNTRY-VALUE", "Bearer"):
        assert secret not in log


# -- the Open Inference Protocol (V2) -------------------------------------------------------------------


def test_v2_infer_scores_rows_like_invocations_and_names_what_it_rejected(endpoint):
    import httpx

    records = feed_records(4, first=400)
    records[2]["amount"] = None  # missing, where the suite expects a value
    metadata = endpoint.get(f"/v2/models/{endpoint.model_name}", key="score").json()
    assert metadata["versions"] == [endpoint.version]
    declared = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    inputs = [
        {
            "name": name,
            "shape": [len(records)],
            "datatype": declared[name],
            "data": [r[name] for r in records],
        }
        for name in records[0]
    ]
    answer = httpx.post(
        f"{endpoint.url}/v2/models/{endpoint.model_name}/infer",
        json={"id": "client-1", "inputs": inputs},
        headers={"Authorization": f"Bearer {endpoint.score_key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (
        endpoint.model_name,
        endpoint.version,
        "client-1",
    )
    outputs = {tensor["name"]: tensor["data"] for tensor in body["outputs"]}
    assert outputs["id"] == [r["transaction_id"] for r in records]
    expected = endpoint.post({"dataframe_records": records}).json()["predictions"]
    assert outputs["score"] == [p.get("score") for p in expected]
    assert outputs["label"] == [p.get("label") for p in expected]
    assert outputs["error"][2] == "failed expect_column_values_to_not_be_null(amount)"
    assert body["parameters"]["rows_in"] == 4 == body["parameters"]["rows_scored"] + 1

    elsewhere = httpx.post(
        f"{endpoint.url}/v2/models/another-model/infer",
        json={"inputs": inputs},
        headers={"Authorization": f"Bearer {endpoint.score_key}"},
        timeout=30,
    )
    assert elsewhere.status_code == 404 and endpoint.model_name in elsewhere.json()["error"]
