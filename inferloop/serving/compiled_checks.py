"""The inference suite's row checks, compiled once for the endpoint: the verdicts of the gate's
`row_failures` (`tasks/gate/row_checks.py`) on a batch's typed columns, in a few NumPy
operations per check.

Why a second evaluator: `row_failures` makes about 90 Arrow compute calls per table whatever
its size, each with its own dispatch; on a one-row request that was 1.7 ms of the 3 ms budget on
a quiet machine (3-4 ms inside the server under load), against about 0.1 ms here. Only what
the committed suites hold is compiled: not-null on any column, numeric bounds on a float64
column, a set of strings on a string column, and bounds left open (the online time bounds).
Any other row check makes `compile_row_checks` return None, and the suite is evaluated by
`row_failures` itself. The expectations are still the only source of the bounds and sets;
tests/serving/test_compiled_checks.py holds the two evaluators equal.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from inferloop.tasks.gate.row_checks import expectation_name

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
# Up to this many rows a set is looked up in Python (one call, no Arrow dispatch); above, by
# Arrow's `is_in` (10k rows: 9.6 ms in Python against 5.2 ms for the gate's whole evaluation).
SET_LOOKUP_ROWS = 64


@dataclass(frozen=True)
class _Check:
    name: str  # as `row_failures` names its mask
    column: str
    kind: str  # "missing", "outside", "not_in_set" or "never"
    low: float | None = None
    high: float | None = None
    strict_min: bool = False
    strict_max: bool = False
    allowed: frozenset[str] = frozenset()

    @cached_property
    def allowed_array(self) -> pa.Array:
        """`allowed` as Arrow takes it, made once rather than on every large request."""
        return pa.array(sorted(self.allowed), pa.string())


class CompiledRowChecks:
    """`failures(table)`: per check, a bool array of the rows failing it, as `row_failures`.
    Every bound is compared in one NumPy operation over all the bounded columns."""

    def __init__(self, checks: list[_Check]):
        self.checks = checks
        self.columns = list(dict.fromkeys(check.column for check in checks))
        bounded = [check for check in checks if check.kind == "outside"]
        self.bounded_columns = [check.column for check in bounded]
        # An open bound is an infinite one, never strict: no value lies beyond it.
        self.low = np.array([[-np.inf if c.low is None else c.low] for c in bounded])
        self.high = np.array([[np.inf if c.high is None else c.high] for c in bounded])
        self.strict_min = np.array([[c.strict_min and c.low is not None] for c in bounded])
        self.strict_max = np.array([[c.strict_max and c.high is not None] for c in bounded])

    def failures(self, table: pa.Table) -> dict[str, np.ndarray]:
        numbers: dict[str, np.ndarray] = {}
        missing = {name: _missing(table.column(name), numbers, name) for name in self.columns}
        outside = iter(self._outside(numbers, table.num_rows))
        masks: dict[str, np.ndarray] = {}
        for check in self.checks:
            if check.kind == "missing":
                masks[check.name] = missing[check.column]
            elif check.kind == "never":
                masks[check.name] = np.zeros(table.num_rows, dtype=bool)
            elif check.kind == "outside":
                masks[check.name] = next(outside)
            else:
                masks[check.name] = _not_in_set(table.column(check.column), check, missing[check.column])
        return masks

    def _outside(self, numbers: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """One row per bounded check: its column's values beyond a bound (NaN, being missing,
        compares false both ways)."""
        if not self.bounded_columns:
            return np.zeros((0, rows), dtype=bool)
        values = np.vstack([numbers[column] for column in self.bounded_columns])
        below = np.where(self.strict_min, values <= self.low, values < self.low)
        above = np.where(self.strict_max, values >= self.high, values > self.high)
        return below | above


def _not_in_set(column: pa.ChunkedArray, check: _Check, missing: np.ndarray) -> np.ndarray:
    if len(column) <= SET_LOOKUP_ROWS:
        allowed = check.allowed
        values = column.to_pylist()
        return np.fromiter(
            (value is not None and value not in allowed for value in values), bool, len(values)
        )
    return ~missing & ~pc.is_in(column, value_set=check.allowed_array).to_numpy(zero_copy_only=False)


def _missing(column: pa.ChunkedArray, numbers: dict, name: str) -> np.ndarray:
    """Null, or NaN in a float column (as `row_failures` counts missing); float columns keep
    their values in `numbers` for the bounds."""
    if pa.types.is_floating(column.type):
        values = column.to_numpy()  # nulls become NaN
        numbers[name] = values
        return np.isnan(values)
    if column.null_count == 0:
        return np.zeros(len(column), dtype=bool)
    return column.is_null().to_numpy()


def compile_row_checks(expectations: list, schema: pa.Schema, parameters: dict) -> CompiledRowChecks | None:
    """The row expectations compiled for tables of `schema`; None when one of them is of a kind
    only `row_failures` evaluates."""
    checks = []
    for config in expectations:
        if config.meta.get("severity") != "row":
            continue
        if config.type not in (NOT_NULL, BETWEEN, IN_SET):
            return None  # the gate refuses it, naming it: let it
        column = config.kwargs.get("column")
        if column not in schema.names:
            continue  # `row_failures` skips absent columns too
        check = _compiled(config, column, schema.field(column).type, parameters)
        if check is None:
            return None
        checks.append(check)
    return CompiledRowChecks(checks)


def _compiled(config, column: str, column_type: pa.DataType, parameters: dict) -> _Check | None:
    name, kwargs = expectation_name(config), config.kwargs
    if config.type == NOT_NULL:
        return _Check(name, column, "missing")
    if config.type == BETWEEN:
        bounds = [_resolved(kwargs.get(key), parameters) for key in ("min_value", "max_value")]
        if bounds == [None, None]:
            return _Check(name, column, "never")
        if not pa.types.is_float64(column_type) or not all(_is_number(b) for b in bounds if b is not None):
            return None
        low, high = (None if b is None else float(b) for b in bounds)
        strict = bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))
        return _Check(name, column, "outside", low, high, *strict)
    if config.type == IN_SET:
        value_set = kwargs.get("value_set")
        if not pa.types.is_string(column_type) or not isinstance(value_set, list):
            return None
        if not all(value is None or isinstance(value, str) for value in value_set):
            return None
        return _Check(name, column, "not_in_set", allowed=frozenset(v for v in value_set if v is not None))
    return None


def _resolved(value, parameters: dict):
    if isinstance(value, dict) and "$PARAMETER" in value:
        return parameters.get(value["$PARAMETER"], _UNRESOLVED)
    return value


_UNRESOLVED = object()  # a parameter the online parameters lack: `row_failures` decides (it fails)


def _is_number(value) -> bool:
    # An int beyond 2**53 has no exact float64: left to Arrow's own comparison.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or abs(value) <= 2**53
