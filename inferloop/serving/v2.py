"""The Open Inference Protocol (V2, as KServe and MLServer speak it), for tabular rows.

    POST /v2/models/{name}/infer   one input tensor per column, shape [N] (or [N, 1]), the
                                   spec's columns as for /invocations; outputs `id`, `score`,
                                   `label` and `error`, one element per row in request order
    GET  /v2/models/{name}         the model's metadata: the version served, inputs and outputs
    GET  /v2                       the server's metadata: name, version, extensions (none)
    GET  /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{version}]/ready
                                   200 with {"live"|"ready": true}; not ready, 503 with the reason
                                   (as KServe answers; /health/ready answers 503 too)

A request's inputs become the same columns an MLflow-format request does, then go through the
same data contract, coalescing and online log. V2 tensors are dense: a row the inference suite
rejected has null `score` and `label` and its failed checks in `error` ("" for scored rows);
`parameters` of the answer account for every row (rows_in = rows_scored + rows_rejected).
"""

from dataclasses import dataclass, field
from math import prod

import pyarrow as pa

from inferloop import __version__
from inferloop.serving.batching import ScoredRequest
from inferloop.serving.champion import FollowerState
from inferloop.serving.contract import RequestError, SchemaError, checked_size, json_object

# Each kind's datatypes, the one metadata names first.
INTEGER_TYPES = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
FLOAT_TYPES = ("FP64", "FP32", "FP16")
DATATYPES = ("BOOL", *INTEGER_TYPES, *FLOAT_TYPES, "BYTES")
OUTPUTS = {"id": "INT64", "score": "FP64", "label": "INT8", "error": "BYTES"}
REQUEST_FIELDS = ("id", "parameters", "inputs", "outputs")
INPUT_FIELDS = ("name", "shape", "datatype", "data", "parameters")


@dataclass
class InferenceRequest:
    columns: dict[str, list]
    id: str | None = None  # the client's request id, echoed in the answer
    outputs: list[str] = field(default_factory=lambda: list(OUTPUTS))


def datatypes(schema: pa.Schema) -> dict[str, tuple[str, ...]]:
    """The V2 datatypes each request column may be declared as (a time is ISO 8601 text)."""
    allowed = {}
    for column in schema:
        if pa.types.is_integer(column.type):
            allowed[column.name] = INTEGER_TYPES
        elif pa.types.is_floating(column.type):
            allowed[column.name] = FLOAT_TYPES + INTEGER_TYPES
        else:
            allowed[column.name] = ("BYTES",)
    return allowed


def parse_infer_request(body: bytes, max_rows: int, schema: pa.Schema) -> InferenceRequest:
    """A V2 inference request's columns (and its id and requested outputs); RequestError saying
    what to fix when it is not one, or when an input's datatype cannot hold its column."""
    payload = json_object(body, '"inputs": a list of tensors, one per column')
    if unknown := sorted(set(payload) - set(REQUEST_FIELDS)):
        raise RequestError(f"Unknown field(s) {unknown} in the request: V2 takes {', '.join(REQUEST_FIELDS)}")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(
            '"inputs" must be a non-empty list of tensors ({"name", "shape", "datatype", "data"})'
        )
    allowed = datatypes(schema)
    columns: dict[str, list] = {}
    for position, tensor in enumerate(inputs):
        name, values = _tensor_column(tensor, position, allowed)
        if name in columns:
            raise RequestError(f"The input {name!r} is sent twice")
        columns[name] = values
    if len({len(values) for values in columns.values()}) > 1:
        raise RequestError("Every input must hold one value per row: their shapes' first dimensions differ")
    return InferenceRequest(checked_size(columns, max_rows), _request_id(payload), _outputs(payload))


def _tensor_column(tensor, position: int, allowed: dict[str, tuple[str, ...]]) -> tuple[str, list]:
    if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= set(tensor):
        raise RequestError(f'Input {position} must be an object with "name", "shape", "datatype" and "data"')
    if unknown := sorted(set(tensor) - set(INPUT_FIELDS)):
        raise RequestError(f"Unknown field(s) {unknown} in input {position}")
    name, shape, datatype, data = tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"]
    if not isinstance(name, str):
        raise RequestError(f"Input {position} needs a name: the column it holds")
    if name not in allowed:
        raise SchemaError(f"Unknown input {name!r}: the model takes one input per column, {list(allowed)}")
    if datatype not in DATATYPES:
        raise RequestError(
            f"Input {name!r} has datatype {datatype!r}: V2 datatypes are {', '.join(DATATYPES)}"
        )
    if datatype not in allowed[name]:
        raise SchemaError(f"Input {name!r} is declared {datatype}: send it as {allowed[name][0]}")
    if (
        not isinstance(shape, list)
        or not all(type(d) is int and d >= 0 for d in shape)
        or len(shape) not in (1, 2)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise RequestError(f"Input {name!r} has shape {shape!r}: a column is [rows] or [rows, 1]")
    if not isinstance(data, list):
        raise RequestError(f"Input {name!r}: data must be a list of values")
    if len(shape) == 2 and all(isinstance(v, list) and len(v) == 1 for v in data):
        data = [v[0] for v in data]  # [[x], [y]] for [rows, 1]
    if len(data) != prod(shape):
        raise RequestError(f"Input {name!r} holds {len(data)} values for shape {shape}")
    return name, data


def _request_id(payload: dict) -> str | None:
    given = payload.get("id")
    if given is not None and not isinstance(given, str):
        raise RequestError('"id" must be a string')
    return given


def _outputs(payload: dict) -> list[str]:
    requested = payload.get("outputs")
    if requested is None:
        return list(OUTPUTS)
    if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
        raise RequestError('"outputs" must be a list of {"name": ...}')
    names = [o["name"] for o in requested]
    if unknown := [n for n in names if n not in OUTPUTS]:
        raise RequestError(f"Unknown output(s) {unknown}: the model answers {', '.join(OUTPUTS)}")
    return names


def infer_answer(scored: ScoredRequest, ids: list, request: InferenceRequest, request_id: str) -> dict:
    """The V2 answer: one tensor per requested output, an element per row in request order."""
    failed = scored.verdicts.failed
    scores, labels = iter(scored.scores.tolist()), iter(scored.labels.tolist())
    values = {name: [] for name in OUTPUTS}
    for position, row_id in enumerate(ids):
        checks = failed.get(position)
        values["id"].append(row_id)
        values["score"].append(None if checks else next(scores))
        values["label"].append(None if checks else next(labels))
        values["error"].append(f"failed {'; '.join(checks)}" if checks else "")
    return {
        "model_name": scored.ref.name,
        "model_version": scored.ref.version,
        "id": request.id or request_id,
        "parameters": {
            "request_id": request_id,
            "rows_in": len(ids),
            "rows_scored": len(ids) - len(failed),
            "rows_rejected": len(failed),
        }
        | ({"degraded": scored.degraded} if scored.degraded else {}),
        "outputs": [
            {"name": name, "datatype": OUTPUTS[name], "shape": [len(ids)], "data": values[name]}
            for name in request.outputs
        ],
    }


def model_metadata(model_name: str, version: str | None, schema: pa.Schema) -> dict:
    """What GET /v2/models/{name} answers: the version served, and the tensors in and out."""
    return {
        "name": model_name,
        "versions": [version] if version else [],
        "platform": "inferloop",
        "inputs": [
            {"name": name, "datatype": allowed[0], "shape": [-1]}
            for name, allowed in datatypes(schema).items()
        ],
        "outputs": [
            {"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in OUTPUTS.items()
        ],
    }


def server_metadata() -> dict:
    """What GET /v2 answers."""
    return {"name": "inferloop", "version": __version__, "extensions": []}


def readiness(state: FollowerState, model_name: str | None = None, version: str | None = None) -> dict:
    """A V2 readiness answer: the server's (no `model_name`), the model's, or one version's
    (ready only while that version is the one served); says why when not ready."""
    ready = state.ready and version in (None, state.version)
    answer = ({"name": model_name} if model_name else {}) | ({"version": version} if version else {})
    answer["ready"] = ready
    if not state.ready:
        answer["error"] = state.problem or "No model is loaded yet"
    elif not ready:
        answer["error"] = f"Version {version} is not served here: version {state.version} is (@champion)"
    return answer
