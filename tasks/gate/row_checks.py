"""Row-level expectations evaluated on Arrow data, vectorised: the quarantine mask.

Each check reads the same expectation definition GX runs (type, kwargs, suite parameters), so
the bounds have one source of truth; tests cross-check the counts against GX's.
"""

import json
from functools import reduce

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from inferloop.core.errors import InferloopError
from inferloop.core.personal_data import NO_PERSONAL_COLUMNS, Pseudonymiser

OFFENDING_VALUE_CHARS = 200  # a 1 MB string is reported, not copied whole into every report
Columnar = pa.Table | pa.RecordBatch


def expectation_name(config) -> str:
    column = config.kwargs.get("column")
    return f"{config.type}({column})" if column else config.type


def _resolve(value, parameters: dict):
    if isinstance(value, dict) and "$PARAMETER" in value:
        return parameters[value["$PARAMETER"]]
    return value


def _missing(values) -> pa.Array:
    floating = pa.types.is_floating(values.type)
    return pc.is_null(values, nan_is_null=floating)


def _bound(value, values):
    if pa.types.is_timestamp(values.type):
        return pa.scalar(pd.Timestamp(value)).cast(values.type)
    return value


def _outside_bounds(values, kwargs: dict, parameters: dict):
    low, high = (_resolve(kwargs.get(k), parameters) for k in ("min_value", "max_value"))
    present = pc.invert(_missing(values))
    below = pc.less_equal if kwargs.get("strict_min") else pc.less
    above = pc.greater_equal if kwargs.get("strict_max") else pc.greater
    try:
        outside = [
            compare(values, _bound(bound, values))
            for compare, bound in ((below, low), (above, high))
            if bound is not None
        ]
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return present  # values of the wrong type cannot be compared: every present one fails
    return pc.and_(present, reduce(pc.or_, outside)) if outside else pc.and_(present, False)


def _not_in_set(values, kwargs: dict, parameters: dict):
    present = pc.invert(_missing(values))
    value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    try:
        allowed = pa.array(kwargs["value_set"], type=value_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return present  # no value of this type can be in the set
    return pc.and_(present, pc.invert(_is_in(values, allowed)))


def _is_in(values, allowed: pa.Array):
    if not pa.types.is_dictionary(values.type):
        return pc.is_in(values, value_set=allowed)
    # Decide once per distinct value, then look the answer up per row.
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    looked_up = [pc.take(pc.is_in(c.dictionary, value_set=allowed), c.indices) for c in chunks]
    return pa.chunked_array(looked_up, pa.bool_()) if isinstance(values, pa.ChunkedArray) else (looked_up[0])


ROW_CHECKS = {
    "expect_column_values_to_not_be_null": lambda values, kwargs, p: _missing(values),
    "expect_column_values_to_be_between": _outside_bounds,
    "expect_column_values_to_be_in_set": _not_in_set,
}


def row_failures(data: Columnar, expectations: list, parameters: dict) -> dict[str, pa.Array]:
    """For every `row` expectation, a boolean array: the rows of `data` that fail it.

    Columns absent from the data are skipped: the critical schema expectation reports them.
    """
    failures = {}
    for config in expectations:
        if config.meta.get("severity") != "row":
            continue
        check = ROW_CHECKS.get(config.type)
        if check is None:
            raise InferloopError(
                f"{config.type} cannot be a row-level expectation (supported: "
                f"{sorted(ROW_CHECKS)}): set meta.severity to critical"
            )
        column = config.kwargs["column"]
        if column in data.schema.names:
            mask = check(data.column(column), config.kwargs, parameters)
            failures[expectation_name(config)] = pc.fill_null(mask, False)
    return failures


def any_failed(masks: dict[str, pa.Array], rows: int) -> pa.Array:
    """Rows failing at least one row-level expectation."""
    return reduce(pc.or_, masks.values()) if masks else pa.array(np.zeros(rows, dtype=bool))


def count(mask: pa.Array) -> int:
    return pc.sum(mask).as_py() or 0


def describe_failed_rows(
    data: Columnar,
    configs: dict,
    masks: dict[str, pa.Array],
    bad: pa.Array,
    personal: Pseudonymiser = NO_PERSONAL_COLUMNS,
) -> pd.DataFrame:
    """The failing rows, with the names of the expectations each failed and its offending
    values (truncated), ready to be written to the quarantine; personal values as keyed hashes."""
    rows = data.filter(bad).to_pandas()
    names: list[list[str]] = [[] for _ in range(len(rows))]
    values: list[dict] = [{} for _ in range(len(rows))]
    for name, mask in masks.items():
        column = configs[name].kwargs["column"]
        for i in np.flatnonzero(mask.filter(bad).to_numpy(zero_copy_only=False)):
            names[i].append(name)
            value = rows[column].iloc[i]
            if column in personal.columns:
                values[i][column] = personal.value(value)
            else:
                values[i][column] = None if pd.isna(value) else str(value)[:OFFENDING_VALUE_CHARS]
    return personal.frame(rows).assign(
        _failed_expectations=["; ".join(n) for n in names],
        _offending_values=[json.dumps(v, sort_keys=True) for v in values],
    )
