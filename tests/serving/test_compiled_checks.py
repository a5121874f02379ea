"""The endpoint's compiled row checks give the gate's verdicts (`row_failures`) on every table:
the committed suite on rows with missing, infinite, boundary and unseen values, and the check
kinds the committed suite does not hold (strict bounds, one open bound); what cannot be compiled
is left to the gate."""

import math
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferloop.core.settings import load_settings
from inferloop.serving.compiled_checks import SET_LOOKUP_ROWS, compile_row_checks
from inferloop.serving.contract import ONLINE_PARAMETERS, RequestContract, inference_expectations
from inferloop.tasks.gate.row_checks import row_failures


@pytest.fixture(scope="module")
def contract():
    loaded = load_settings()
    return RequestContract(loaded.dataset, inference_expectations(loaded.dataset, loaded.gate))


def _values(column: str, kind: str, config_values: list) -> st.SearchStrategy:
    """Values around what the suite's checks look at: its bounds and set members, and beyond."""
    if kind == "numeric":
        edges = [v for v in config_values if isinstance(v, float | int)]
        near = [e + d for e in edges for d in (-1e-9, 0.0, 1e-9)]
        return st.one_of(
            st.none(),
            st.sampled_from([math.nan, math.inf, -math.inf, 0.0, *near]),
            st.floats(-1e4, 1e5, allow_nan=False),
        )
    members = [v for v in config_values if isinstance(v, str)]
    return st.one_of(st.none(), st.sampled_from(members or ["x"]), st.text(max_size=3))


def _edges(contract, column: str) -> list:
    found = []
    for config in contract.expectations:
        if config.kwargs.get("column") == column:
            found += [config.kwargs.get("min_value"), config.kwargs.get("max_value")]
            found += config.kwargs.get("value_set") or []
    return found


@st.composite
def tables(draw, contract):
    rows = draw(st.integers(1, 12))
    spec = contract.spec
    columns = {
        spec.id_column: pa.array(range(rows), pa.int64()),
        spec.time_column: pa.array(
            draw(st.lists(st.sampled_from([None, 0, 1_767_225_600_000_000]), min_size=rows, max_size=rows)),
            pa.timestamp("us"),
        ),
    }
    for name, kind in spec.features.items():
        values = draw(st.lists(_values(name, kind, _edges(contract, name)), min_size=rows, max_size=rows))
        columns[name] = pa.array(values, pa.float64() if kind == "numeric" else pa.string())
    table = pa.Table.from_pydict(columns, schema=contract.schema)
    if draw(st.booleans()):  # a coalesced batch's columns come in several chunks
        table = pa.concat_tables([table.slice(0, rows // 2), table.slice(rows // 2)])
    if draw(st.booleans()):  # a large batch, past SET_LOOKUP_ROWS (ids repeat: no row check reads them)
        table = pa.concat_tables([table] * (SET_LOOKUP_ROWS // rows + 1))
    return table


def _gate(table, expectations) -> dict[str, list[bool]]:
    return {
        name: mask.to_numpy(zero_copy_only=False).tolist()
        for name, mask in row_failures(table, expectations, ONLINE_PARAMETERS).items()
    }


def _compiled(table, expectations) -> dict[str, list[bool]]:
    compiled = compile_row_checks(expectations, table.schema, ONLINE_PARAMETERS)
    assert compiled is not None
    return {name: mask.tolist() for name, mask in compiled.failures(table).items()}


def test_the_committed_suite_compiles(contract):
    assert contract.compiled is not None
    assert len(contract.compiled.checks) == len(contract.expectations)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_compiled_checks_fail_the_rows_the_gate_fails(contract, data):
    table = data.draw(tables(contract))
    assert _compiled(table, contract.expectations) == _gate(table, contract.expectations)


def _row(kind: str, column: str, **kwargs) -> SimpleNamespace:
    return SimpleNamespace(
        type=f"expect_column_values_to_{kind}", kwargs={"column": column, **kwargs}, meta={"severity": "row"}
    )


# One check per column: masks are named by check and column, so a second would replace the first.
OTHER_CHECKS = [
    _row("be_between", "amount", min_value=0.0, max_value=4421.25, strict_min=True, strict_max=True),
    _row("be_between", "hour_of_day", min_value=None, max_value=5),
    _row("be_between", "tx_count_1h", min_value=2),
    _row("be_between", "event_time", min_value=None, max_value=None),
    _row("be_in_set", "channel", value_set=["pos", None]),
    _row("not_be_null", "transaction_id"),
    _row("not_be_null", "not_a_request_column"),
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_strict_and_open_bounds_fail_the_rows_the_gate_fails(contract, data):
    table = data.draw(tables(contract))
    assert _compiled(table, OTHER_CHECKS) == _gate(table, OTHER_CHECKS)


@pytest.mark.parametrize(
    "check",
    [
        _row("be_between", "event_time", min_value="2026-01-01", max_value=None),  # a time bound
        _row("be_between", "amount", min_value="0", max_value=None),  # a bound that is not a number
        _row("be_between", "channel", min_value=0, max_value=1),  # bounds on strings
        _row("be_in_set", "channel", value_set=[1, 2]),  # a set of numbers for strings
        _row("be_between", "event_time", min_value={"$PARAMETER": "unknown"}),
        _row("be_unique", "amount"),  # not a row check: the gate says so
        SimpleNamespace(type="expect_table_row_count_to_be_between", kwargs={}, meta={"severity": "row"}),
    ],
)
def test_what_does_not_compile_is_left_to_the_gate(contract, check):
    assert compile_row_checks([check], contract.schema, ONLINE_PARAMETERS) is None


def test_the_verdicts_name_the_failed_checks_whichever_evaluates(contract):
    spec = contract.spec
    row = {spec.id_column: [1], spec.time_column: [None]}
    row |= {name: [-1.0 if kind == "numeric" else "unseen"] for name, kind in spec.features.items()}
    table = pa.Table.from_pydict(row, schema=contract.schema)
    compiled = contract.row_verdicts(table)
    contract_gate = RequestContract(spec, contract.expectations)
    contract_gate.compiled = None
    gate = contract_gate.row_verdicts(table)
    assert compiled.failed == gate.failed and len(compiled.failed[0]) == len(spec.features) + 1
    assert np.array_equal(compiled.bad, gate.bad)
