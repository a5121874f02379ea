"""Applying a dataset spec to a source's raw rows: typed lake rows, and bad rows with reasons.

A bad row is one the lake cannot hold as the spec describes it: no usable event time, no id,
a missing label or one outside `label.classes`, a numeric feature whose value is not a number.
Everything else (nulls in features, out-of-range values, unseen categories) is the
data-quality gate's concern and is written as it is.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError

SOURCE_ROW = "_source_row"
REASONS = "_reasons"
BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}
# An ISO-8601 time of day followed by a UTC offset (Z, +02:00, -0530, +02).
UTC_OFFSET = r"[T\s]\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$"


class SpecMismatchError(InferloopError, ValueError):
    """The source's columns are not the ones the dataset spec describes."""


class IdTypeError(InferloopError, ValueError):
    """The source's id column holds values that are neither integers nor text."""


@dataclass
class Check:
    """One way a row can be bad: which rows fail it and the raw values they had."""

    column: str
    problem: str
    failed: np.ndarray
    raw: pd.Series
    personal: bool = False  # the reason never quotes a personal value

    @property
    def reason(self) -> str:
        return f"{self.column}: {self.problem}"

    def describe(self, row: int) -> str:
        value = self.raw.iloc[row]
        return self.reason if self.personal or _is_missing(value) else f"{self.reason} ({value!r})"


@dataclass
class ConformedRows:
    rows: pd.DataFrame  # id, time, features, label: typed as the lake holds them
    quarantined: pd.DataFrame  # the bad rows' raw values, source row number and reasons
    reasons: dict[str, int]  # rows failing each check; a row can fail several


def check_columns(columns: list[str], spec: DatasetSpec, uri: str) -> None:
    """Fail naming the spec fields whose columns the source lacks, and the source columns the
    spec does not mention."""
    expected = {f"features.{name}": name for name in spec.features}
    expected |= {f"drop ({name})": name for name in spec.drop}
    expected["label.column"] = spec.label.column
    generated = {"id_column": (spec.generate_id, "generate_id: true")}
    generated["time_column"] = (spec.time_from_row_order is not None, "time_from_row_order")
    for field, (is_generated, how) in generated.items():
        column = getattr(spec, field)
        if not is_generated:
            expected[field] = column
        elif column in columns:
            raise SpecMismatchError(
                f"{uri} has a column '{column}' but the spec computes {field} '{column}' ({how}): "
                f"remove {how} to use the source's column, or name {field} differently"
            )
    missing = [f"{field} '{column}'" for field, column in expected.items() if column not in columns]
    if missing:
        raise SpecMismatchError(
            f"{uri} lacks columns the spec {spec.name} names: {', '.join(missing)}. "
            f"Its columns are {columns}: fix the spec or the export"
        )
    unknown = [column for column in columns if column not in set(expected.values())]
    if unknown:
        raise SpecMismatchError(
            f"{uri} has columns the spec {spec.name} does not mention: {unknown}. "
            "Add them to features or drop"
        )


def conform_rows(raw: pd.DataFrame, spec: DatasetSpec) -> ConformedRows:
    """Typed lake rows in source order and the bad rows; every source row is in exactly one.

    Ids from the source are kept exactly (`lake_ids`); a generated id is the 0-based source
    row number. Numeric features become float64, categoricals text, the label the type of
    `label.positive`, the time naive datetime64[ns] (`parse_times`: time-zone aware values in
    UTC, naive values as they are).
    """
    raw = raw.reset_index(drop=True)
    row_number = np.arange(len(raw), dtype=np.int64)
    rows, checks = {}, []
    if spec.generate_id:
        rows[spec.id_column] = pd.Series(row_number)
    else:
        rows[spec.id_column] = lake_ids(raw[spec.id_column], spec.id_column)
        checks.append(_missing_check(spec.id_column, raw[spec.id_column]))
    rows[spec.time_column], time_checks = _event_time(raw, spec, row_number)
    checks += time_checks
    for column, kind in spec.features.items():
        if kind == "numeric":
            rows[column] = pd.to_numeric(raw[column], errors="coerce").astype("float64")
            failed = _present(raw[column]) & rows[column].isna()
            checks.append(Check(column, "not a number", failed, raw[column], column in spec.pii))
        else:
            values = raw[column].astype(object).where(_present(raw[column]))
            rows[column] = values.where(values.isna(), values.astype(str))
    rows[spec.label.column], label_checks = _label(raw[spec.label.column], spec)
    checks += label_checks

    bad = np.logical_or.reduce([check.failed for check in checks]) if checks else np.zeros(len(raw), bool)
    typed = pd.DataFrame(rows)[[*spec.inference_columns, spec.label.column]]
    good = typed[~bad].reset_index(drop=True)
    good[spec.label.column] = good[spec.label.column].astype(_label_dtype(spec))
    quarantined = raw[bad].reset_index(drop=True)
    quarantined[SOURCE_ROW] = row_number[bad]
    quarantined[REASONS] = [
        "; ".join(check.describe(row) for check in checks if check.failed[row]) for row in np.flatnonzero(bad)
    ]
    return ConformedRows(
        rows=good,
        quarantined=quarantined,
        reasons={check.reason: int(check.failed.sum()) for check in checks if check.failed.any()},
    )


def lake_ids(values: pd.Series, column: str) -> pd.Series:
    """Source ids as the lake holds them, each exactly the id the source gave: integers as
    int64, text as text. A CSV's ids are always text ("007", "123.0" and "tx-17" stay as
    written); unsigned 64-bit integers become their decimal text (they may not fit int64);
    floating-point ids whose values are all whole numbers (an integer column with a gap, as
    pandas writes it) become int64. Anything else is refused with IdTypeError.
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or not (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    ):
        raise _id_type_error(column, values, "ids must be integers or text")
    if pd.api.types.is_signed_integer_dtype(dtype):
        return values.astype("Int64" if values.hasnans else "int64")
    if pd.api.types.is_unsigned_integer_dtype(dtype):
        if np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype).itemsize < 8:
            return values.astype("Int64" if values.hasnans else "int64")
        return _as_text(values)  # uint64 may exceed int64; its decimal text is exact
    if pd.api.types.is_float_dtype(dtype):
        present = values.dropna()
        whole = (present % 1 == 0) & (present.abs() <= 2**53)  # beyond 2**53 a float is not exact
        if not whole.all():
            raise _id_type_error(
                column, present[~whole], "ids must be integers or text, and these are not whole numbers"
            )
        return values.astype("Int64")
    return _as_text(values)


def _as_text(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    present = values.notna()
    return values.where(~present, values[present].map(str))


def _id_type_error(column: str, values: pd.Series, why: str) -> IdTypeError:
    examples = ", ".join(repr(v) for v in values.dropna().head(3).tolist())
    return IdTypeError(
        f"The id column '{column}' holds {values.dtype} values ({examples}): {why}. Export the "
        "ids as integers or text, or set generate_id: true in the dataset spec to number the rows"
    )


def lake_schema(rows: pd.DataFrame, spec: DatasetSpec) -> pa.Schema:
    """One Arrow type per column for every partition an import writes (a day whose values are
    all missing keeps the column's type)."""
    id_type = pa.int64() if spec.generate_id else pa.array(rows[spec.id_column]).type
    label_type = {"bool": pa.bool_(), "int64": pa.int64()}.get(_label_dtype(spec), pa.string())
    return pa.schema(
        [
            (spec.id_column, id_type),
            (spec.time_column, pa.timestamp("ns")),
            *(
                (name, pa.float64() if kind == "numeric" else pa.string())
                for name, kind in spec.features.items()
            ),
            (spec.label.column, label_type),
        ]
    )


def _is_missing(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value)) or str(value).strip() == ""


def _present(values: pd.Series) -> np.ndarray:
    """Not null and not blank (a CSV's empty cells are already null when read)."""
    return (values.notna() & values.astype(str).str.strip().ne("")).to_numpy(dtype=bool)


def _missing_check(column: str, values: pd.Series) -> Check:
    return Check(column, "missing", ~_present(values), values)


def _event_time(
    raw: pd.DataFrame, spec: DatasetSpec, row_number: np.ndarray
) -> tuple[pd.Series, list[Check]]:
    if spec.time_from_row_order is not None:
        order = spec.time_from_row_order
        start = pd.Timestamp(order.start)
        start = start.tz_convert(None) if start.tz else start
        return (start + pd.Series(row_number) * order.step_timedelta).astype("datetime64[ns]"), []
    values = raw[spec.time_column]
    parsed = parse_times(values, spec.time_format).dt.tz_localize(None).astype("datetime64[ns]")
    problem = f"not a time in format {spec.time_format!r}" if spec.time_format else "not a time"
    present = _present(values)
    return parsed, [
        _missing_check(spec.time_column, values),
        Check(spec.time_column, problem, present & parsed.isna().to_numpy(), values),
    ]


def parse_times(values: pd.Series, time_format: str | None = None) -> pd.Series:
    """Event times in UTC (NaT where a value is not a time). With `time_format`, every value
    in that strftime layout. Without, text is read as ISO-8601 value by value: precision
    (with or without fractional seconds) and UTC offsets may differ from row to row, offsets
    are converted to UTC and values without one are taken as UTC. Text that is not ISO-8601
    (e.g. 05/07/2026 10:00) falls back to pandas' inference of one layout from the first such
    value. Already typed times (a parquet timestamp column) are kept.
    """
    with warnings.catch_warnings():  # "could not infer format": unparsed values are quarantined
        warnings.simplefilter("ignore", UserWarning)
        is_text = pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
        if time_format is not None or not is_text:
            return pd.to_datetime(values, format=time_format, errors="coerce", utc=True)
        # Not pandas' default: it infers one layout from the first value, and every value
        # that differs from it (2026-01-01T10:00:00 then 2026-01-01T10:00:00.5) fails. Values
        # with and without an offset are parsed apart: in one call pandas 2.3 gives a naive
        # value the offset of the aware value before it.
        aware = _has_utc_offset(values)
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
        for rows in (aware, ~aware):
            if rows.any():
                parsed[rows] = pd.to_datetime(values[rows], format="ISO8601", errors="coerce", utc=True)
        rest = (parsed.isna() & values.notna()).to_numpy()
        if rest.any():
            parsed[rest] = pd.to_datetime(values[rest], errors="coerce", utc=True)
        return parsed


def _has_utc_offset(values: pd.Series) -> np.ndarray:
    """Which values end in a UTC offset, matched in Arrow (RE2): pandas' str.contains took
    4 s per million rows, this 0.3 s."""
    try:
        text = pa.array(values, from_pandas=True, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text (e.g. numbers in an object column)
        text = pa.array(values.astype(str).where(values.notna(), None), type=pa.string())
    return pc.fill_null(pc.match_substring_regex(text, UTC_OFFSET), False).to_numpy(zero_copy_only=False)


def _label(values: pd.Series, spec: DatasetSpec) -> tuple[pd.Series, list[Check]]:
    """The label as the type of `label.positive`; checks for missing, unparsed, unknown values."""
    column, positive = spec.label.column, spec.label.positive
    present = _present(values)
    if isinstance(positive, bool):
        parsed = values.map(lambda v: v if isinstance(v, bool) else BOOLEAN_TEXT.get(str(v).strip().lower()))
        problem = "not true or false"
    elif isinstance(positive, int):
        numbers = pd.to_numeric(values, errors="coerce")
        parsed = numbers.where(numbers.notna() & (numbers % 1 == 0))
        problem = "not an integer"
    else:
        parsed = values.astype(object).where(~present, values.astype(str))
        problem = None  # any present value is text
    checks = [_missing_check(column, values)]
    if problem:
        checks.append(Check(column, problem, present & parsed.isna().to_numpy(), values))
    if spec.label.classes is not None:
        unknown = present & parsed.notna().to_numpy() & ~parsed.isin(spec.label.classes).to_numpy()
        checks.append(Check(column, f"not one of {spec.label.classes}", unknown, values))
    return parsed, checks


def _label_dtype(spec: DatasetSpec):
    positive = spec.label.positive
    return "bool" if isinstance(positive, bool) else "int64" if isinstance(positive, int) else object
