"""The data contract of one request: MLflow's request formats in, checked columns to score
(typed to Arrow a coalesced batch at a time) and rejected rows (with the checks they failed) out,
as batch scoring applies it.

- The columns and types come from the dataset spec (`inference_columns`): id, event time and
  every feature, nothing else. A missing or unknown column, or a value of the wrong type, is a
  `SchemaError` (HTTP 400) naming the column: the request as a whole cannot be read. Whatever
  `checked` passes, `table` types: one request cannot fail the batch it is coalesced into.
- The row-level checks are the committed inference suite's `row` expectations, with the gate's
  verdicts (`tasks/gate/row_checks.py`), compiled once into a few NumPy operations
  (`compiled_checks.py`; the gate's own functions where a check does not compile): a failing row
  is rejected with the names of the expectations it failed, the other rows are scored. Online
  rows land in the lake partition of their own event day, so the suite's partition bounds on
  the event time do not apply online (its not-null check does).
- rows in = rows passed + rows rejected, for every request.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.settings import GateSettings
from inferloop.serving.compiled_checks import compile_row_checks
from inferloop.tasks.gate.expectations import ExpectationDefinition, suite_definitions
from inferloop.tasks.gate.row_checks import describe_failed_rows, expectation_name, row_failures

FORMATS = ("dataframe_split", "dataframe_records", "inputs")
MAX_STRING_CHARS = 1_000  # a category, an id: longer strings are a client bug, not data
# Online rows are partitioned by their own event day: the suite's per-partition time bounds
# cannot fail (a missing bound is no bound).
ONLINE_PARAMETERS = {"partition_start": None, "partition_end": None}


class RequestError(InferloopError, ValueError):
    """A request the endpoint refuses as a whole; `status` is the HTTP status to answer with."""

    status = 400


class SchemaError(RequestError):
    """A column is missing, unknown or holds values of the wrong type."""


class RequestTooLarge(RequestError):
    status = 413


@dataclass
class RowVerdicts:
    """The row checks' verdict on a table: which rows fail, and the names of what each failed."""

    bad: np.ndarray  # bool per row
    failed: dict[int, list[str]]  # row position -> names of the failed expectations

    @property
    def rows_rejected(self) -> int:
        return len(self.failed)


def parse_body(body: bytes, max_rows: int) -> dict[str, list]:
    """The columns of a request body in one of MLflow's formats (`dataframe_split`,
    `dataframe_records`, `inputs`), each a list of JSON values of the same length."""
    formats = " or ".join(FORMATS)
    payload = json_object(body, formats)
    unknown = sorted(set(payload) - set(FORMATS))
    given = [name for name in FORMATS if name in payload]
    if unknown:
        raise RequestError(f"Unknown field(s) {unknown} in the request: send exactly one of {formats}")
    if len(given) != 1:
        raise RequestError(f"Send exactly one of {formats} (got {given or 'none'})")
    name = given[0]
    data = payload[name]
    if name == "dataframe_split":
        columns = _split_columns(data)
    elif isinstance(data, list):  # dataframe_records, or inputs as records
        columns = _record_columns(data, name)
    elif name == "inputs" and isinstance(data, dict):
        columns = _dict_columns(data)
    else:
        raise RequestError(
            f"{name} must be a list of row objects{' or an object of columns' * (name == 'inputs')}"
        )
    return checked_size(columns, max_rows)


def checked_size(columns: dict[str, list], max_rows: int) -> dict[str, list]:
    """`columns`, when they hold at least one row and at most `max_rows`."""
    rows = len(next(iter(columns.values()))) if columns else 0
    if rows == 0:
        raise RequestError("The request holds no rows: send at least one")
    if rows > max_rows:
        raise RequestTooLarge(
            f"The request holds {rows} rows, more than INFERLOOP_SERVE_MAX_REQUEST_ROWS={max_rows}: split it"
        )
    return columns


def json_object(body: bytes, holding: str) -> dict:
    """The JSON object a request body holds; RequestError saying what to send (an object with
    `holding`) when it is empty, not UTF-8, not JSON or not an object."""
    if not body.strip():
        raise RequestError(f"The request body is empty: send a JSON object with {holding}")
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RequestError(f"The request body is not UTF-8 (byte {error.start}): send UTF-8 JSON") from error
    except json.JSONDecodeError as error:
        raise RequestError(
            f"The request body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error
    if not isinstance(payload, dict):
        raise RequestError(f"The request body must be a JSON object with {holding}")
    return payload


def _split_columns(data) -> dict[str, list]:
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        raise RequestError('dataframe_split must be an object with "columns" and "data"')
    unknown = sorted(set(data) - {"columns", "data", "index"})
    if unknown:
        raise RequestError(f"Unknown field(s) {unknown} in dataframe_split: it takes columns, data, index")
    names, rows = data["columns"], data.get("data")
    if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
        raise RequestError('dataframe_split "data" must be a list of rows, each a list of values')
    _check_names(names)
    width = len(names)
    for position, row in enumerate(rows):
        if len(row) != width:
            raise RequestError(f"dataframe_split row {position} has {len(row)} values for {width} columns")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def _record_columns(records: list, name: str) -> dict[str, list]:
    if any(not isinstance(record, dict) for record in records):
        raise RequestError(f"{name} must be a list of row objects (column: value)")
    names = list(dict.fromkeys(key for record in records for key in record))
    _check_names(names)
    return {column: [record.get(column) for record in records] for column in names}


def _dict_columns(data: dict) -> dict[str, list]:
    _check_names(list(data))
    lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
    if -1 in lengths or len(lengths) > 1:
        raise RequestError("inputs as an object must map every column to a list of values of one length")
    return dict(data)


def _check_names(names: list) -> None:
    if any(not isinstance(name, str) for name in names):
        raise RequestError("Column names must be strings")
    if len(set(names)) != len(names):
        raise RequestError("A column is named twice in the request")


class RequestContract:
    """The dataset spec's columns and types, and the inference suite's row checks."""

    def __init__(self, spec: DatasetSpec, expectations: list):
        self.spec = spec
        self.expectations = [c for c in expectations if c.meta.get("severity") == "row"]
        self.configs = {expectation_name(c): c for c in self.expectations}
        self.schema = pa.schema(
            [
                (spec.id_column, pa.int64()),  # as batch scoring writes ids
                (spec.time_column, pa.timestamp("us")),
                *[
                    (name, pa.float64() if kind == "numeric" else pa.string())
                    for name, kind in spec.features.items()
                ],
            ]
        )
        self.compiled = compile_row_checks(self.expectations, self.schema, ONLINE_PARAMETERS)

    def checked(self, columns: dict[str, list]) -> dict[str, list]:
        """The request's columns in the spec's order, each value checked against its column's
        type (event times parsed); SchemaError naming the column when one is missing, unknown or
        holds a value of the wrong type. `table` makes Arrow columns of them: once per coalesced
        batch, as building them per request was a fifth of the endpoint's CPU under 32 clients."""
        spec = self.spec
        expected = spec.inference_columns
        if unknown := [c for c in columns if c not in expected]:
            raise SchemaError(
                f"Unknown column {unknown[0]!r}: the model takes {spec.id_column!r}, "
                f"{spec.time_column!r} and the features {spec.feature_columns}"
            )
        if missing := [c for c in expected if c not in columns]:
            raise SchemaError(f"Missing column {missing[0]!r}: every row needs {expected}")
        checked = {
            spec.id_column: _checked_ids(spec.id_column, columns[spec.id_column]),
            spec.time_column: _parsed_times(spec.time_column, columns[spec.time_column]),
        }
        for name, kind in spec.features.items():
            checked[name] = (_checked_numbers if kind == "numeric" else _checked_strings)(name, columns[name])
        return checked

    def table(self, requests: list[dict[str, list]]) -> pa.Table:
        """One table of the spec's columns and types holding the rows of `requests` (each what
        `checked` returned), in order."""
        names = self.schema.names
        if len(requests) == 1:
            values = [requests[0][name] for name in names]
        else:
            values = [[value for request in requests for value in request[name]] for name in names]
        arrays = [
            pa.array(np.array(column, dtype=np.float64), type=field.type, from_pandas=True)
            if pa.types.is_floating(field.type)  # NaN is missing, as in the lake; ±inf stays
            else pa.array(column, type=field.type)
            for field, column in zip(self.schema, values, strict=True)
        ]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def row_verdicts(self, table: pa.Table) -> RowVerdicts:
        """The inference suite's row checks on `table` (one request, or a coalesced batch):
        compiled where the suite allows (`compiled_checks.py`), else the gate's own."""
        masks = self.failures(table)
        bad_rows = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(table.num_rows, bool)
        failed: dict[int, list[str]] = {}
        if bad_rows.any():  # rare: the Arrow masks the gate's description takes
            arrow_masks = {name: pa.array(mask) for name, mask in masks.items()}
            described = describe_failed_rows(table, self.configs, arrow_masks, pa.array(bad_rows))
            positions = np.flatnonzero(bad_rows)
            for position, names in zip(positions, described["_failed_expectations"], strict=True):
                failed[int(position)] = names.split("; ")
        return RowVerdicts(bad_rows, failed)

    def failures(self, table: pa.Table) -> dict[str, np.ndarray]:
        """Per row check, the rows of `table` failing it."""
        if self.compiled is not None:
            return self.compiled.failures(table)
        masks = row_failures(table, self.expectations, ONLINE_PARAMETERS)
        return {name: mask.to_numpy(zero_copy_only=False) for name, mask in masks.items()}

    def model_input(self, passed: pa.Table) -> pd.DataFrame:
        """The model's input of the passed rows: what `prepare_features` makes of them (spec
        order, float64 numerics, str categoricals), which the typed columns already are, so
        they go to pandas as they are (`prepare_features` took 9 ms on one row on a busy machine;
        tests/serving/test_contract.py holds the two equal). A frame of the columns' NumPy
        arrays: `Table.to_pandas` costs twice as much on a few rows."""
        return pd.DataFrame({name: passed.column(name).to_numpy() for name in self.spec.feature_columns})


def _type_error(column: str, position: int, value, expected: str) -> SchemaError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return SchemaError(f"Column {column!r} holds {shown} (row {position}): expected {expected}")


def _checked_ids(column: str, values: list) -> list:
    for position, value in enumerate(values):
        if value is None:
            raise SchemaError(f"Column {column!r} is empty in row {position}: every row needs an id")
        if type(value) is not int or not -(2**63) <= value < 2**63:
            raise _type_error(column, position, value, "an integer id")
    if len(set(values)) != len(values):
        seen = set()
        duplicated = next(v for v in values if v in seen or seen.add(v))
        raise SchemaError(f"Column {column!r} holds the id {duplicated!r} twice: ids must be unique")
    return values


def _parsed_times(column: str, values: list) -> list:
    times = []
    for position, value in enumerate(values):
        if value is None:
            times.append(None)
            continue
        try:
            moment = datetime.fromisoformat(value)  # type: ignore[arg-type]
            if moment.tzinfo is not None:  # the lake keeps event times naive, in UTC, as feeds write them
                moment = moment.astimezone(UTC).replace(tzinfo=None)
        except (TypeError, ValueError, OverflowError) as error:  # overflow: 0001-01-01T00:00+05:00
            raise _type_error(
                column, position, value, "an ISO 8601 time such as 2026-01-06T12:00:00"
            ) from error
        times.append(moment)
    return times


def _checked_numbers(column: str, values: list) -> list:
    for position, value in enumerate(values):
        if value is None or type(value) is float or (type(value) is int and abs(value) < 2**63):
            continue
        raise _type_error(column, position, value, "a number")
    return values


def _checked_strings(column: str, values: list) -> list:
    for position, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, str):
            raise _type_error(column, position, value, "a string")
        if not value.isascii():  # JSON can carry a lone surrogate ("\ud800"), which UTF-8 cannot
            try:
                value.encode()
            except UnicodeEncodeError as error:
                raise _type_error(column, position, value, "text that UTF-8 can encode") from error
        if len(value) > MAX_STRING_CHARS:
            raise SchemaError(
                f"Column {column!r} holds a string of {len(value)} characters (row {position}): "
                f"at most {MAX_STRING_CHARS}"
            )
    return values


def inference_expectations(spec: DatasetSpec, gate: GateSettings) -> list[ExpectationDefinition]:
    """The committed inference suite's expectations, as the gate reads them (from the suite's
    file: the endpoint never imports GX)."""
    return suite_definitions(gate, spec, "inference")
