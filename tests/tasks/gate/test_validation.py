"""The gate's verdict object (tasks/gate/validation.py): what a refusal says, which outcomes count
as failed, and the dict every renderer reads."""

import json

from inferloop.core.errors import InferloopError
from inferloop.tasks.gate.validation import BatchRefusedError, ExpectationOutcome, ValidationReport


def report(decision: str = "refused", **overrides) -> ValidationReport:
    fields = dict(
        dataset="transactions",
        suite="transactions_inference",
        partition_date="2026-01-06",
        rows_in=500,
        rows_passed=0,
        rows_quarantined=0,
        rows_refused=500,
        decision=decision,
        reasons=["expect_table_columns_to_match_set: missing columns ['amount']", "3.0% of rows fail"],
        expectations=[
            ExpectationOutcome("expect_table_columns_to_match_set", "critical", success=False),
            ExpectationOutcome("expect_column_values_to_be_in_set(channel)", "row", True, unexpected_count=7),
            ExpectationOutcome("expect_column_values_to_not_be_null(amount)", "row", True),
        ],
    )
    return ValidationReport(**(fields | overrides))


def test_a_refusal_names_the_partition_every_reason_and_what_to_do():
    error = BatchRefusedError(report())
    assert isinstance(error, InferloopError)  # the CLI prints it without a traceback
    message = str(error)
    assert message.startswith("The data-quality gate refused transactions_inference for 2026-01-06: ")
    assert "missing columns ['amount']; 3.0% of rows fail" in message
    assert "Nothing was written for this partition" in message and "rerun" in message
    assert error.report.rows_refused == 500


def test_failed_lists_failures_and_outcomes_with_quarantined_rows():
    assert [o.name for o in report().failed] == [
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_in_set(channel)",
    ]
    assert report().refused and not report("accepted").refused


def test_to_dict_is_plain_json_with_every_outcome():
    raw = report().to_dict()
    assert json.loads(json.dumps(raw)) == raw
    assert raw["expectations"][1] == {
        "name": "expect_column_values_to_be_in_set(channel)",
        "severity": "row",
        "success": True,
        "unexpected_count": 7,
        "gx_unexpected_count": None,
        "detail": "",
    }
