"""`inferloop expectations suggest`: propose suites from a reference window, for a person to review.

A proposal must hold for the partitions after the window, not only for the window itself: a
feed's means shift, its categories grow and its partition sizes vary. So the rules describe what
is *impossible* for the feed, not what the window happened to show:
- numeric ranges are the window's range widened by `RANGE_MARGIN` times its scale, with no sign
  inferred from the data (a rate that was positive for three weeks may turn negative later);
  a column constant in the window gets none (it shows nothing of the column's spread);
- a value set is proposed only when the window shows the column's values in full, and a row
  with a value outside it is quarantined with that value: the partition goes on unless most of
  its rows fail;
- the row count asks for at least one row and allows `MAX_ROWS_FACTOR` times the largest
  partition seen;
- label values come from the spec's meaning (`classes`, else the values seen and `positive`);
- personal columns (`pii`) get type and null checks only: no value of theirs enters a suite.
Each proposed rule carries a note (GX `notes`, shown in the JSON diff and in Data Docs) saying
where it came from and what to check; `review_points` gathers them for the CLI.
"""

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from inferloop.core.dataset import DatasetSpec
from inferloop.core.settings import Settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import load_labelled_day
from inferloop.tasks.gate.expectations import (
    DATETIME_TYPES,
    ID_TYPES,
    NUMERIC_TYPES,
    STRING_TYPES,
    Purpose,
    critical,
    open_gx_project_for_edit,
    row_level,
    save_suite,
)

# Ranges catch order-of-magnitude mistakes (units, sentinels such as -999999, infinities); a
# narrower one would quarantine the rare extreme rows that are often the interesting ones.
RANGE_MARGIN = 10
MAX_ROWS_FACTOR = 100
# A value set may be expected to quarantine at most this share of rows of the same feed.
UNSEEN_TOLERANCE = 0.02
# A partition is refused only when most of its rows have values the set lacks: the suite no
# longer describes the feed. Fewer are quarantined row by row.
VALUE_SET_MOSTLY = 0.5

ROW_COUNT_NOTE = (
    f"At least 1 row (an empty partition is refused), at most {MAX_ROWS_FACTOR} times the window's "
    "largest partition: small partitions pass. Raise max_value if the feed will grow more."
)
RANGE_NOTE = (
    f"The window's range widened on each side by {RANGE_MARGIN} times its scale (the larger of its "
    "width and its largest magnitude): it catches impossible values, not drift. No sign is inferred: "
    "set min_value to 0 where the column's meaning forbids negatives (an amount, a count, an age)."
)
NO_RANGE_NOTE = (
    "No range proposed: the column is constant or empty in the window, which shows nothing of its "
    "spread. Add one from the column's meaning."
)
VALUE_SET_NOTE = (
    "The values seen in the window: a row with another value is quarantined with it; the partition "
    "is refused only when most rows have one. Add the values the window lacked."
)
PERSONAL_NOTE = (
    "A personal column (pii): no range or value set is proposed, so that none of its values is "
    "written into the suite."
)


@dataclass
class SuiteProposal:
    paths: list[Path]  # the suites written into the GX project
    review: list[str]  # what a person should check before committing them


def propose_suites(
    storage: Storage, spec: DatasetSpec, start: date, end: date, settings: Settings
) -> SuiteProposal:
    """Write training and inference suites proposed from `start`..`end` into expectations/.

    The files are a proposal: review the diff (`git diff expectations/`) and commit it; the
    committed suites are the ones every flow uses.
    """
    days = spec.partitioning.keys(start, end)
    frames = [load_labelled_day(storage, spec, day) for day in days]
    reference = pd.concat(frames, ignore_index=True)
    partition_rows = [len(frame) for frame in frames]
    context = open_gx_project_for_edit(settings.gate)
    suites = {
        purpose: suggest_expectations(reference, spec, purpose, partition_rows)
        for purpose in ("training", "inference")
    }
    return SuiteProposal(
        paths=[save_suite(context, spec, purpose, expectations) for purpose, expectations in suites.items()],
        review=review_points(suites["training"]),  # the inference suite's checks are a subset
    )


def suggest_expectations(
    reference: pd.DataFrame, spec: DatasetSpec, purpose: Purpose, partition_rows: list[int]
) -> list:
    """Expectations proposed from a reference window (its rows, and the row count of each of its
    partitions), for a person to review."""
    import great_expectations.expectations as gxe

    reference = reference.sort_values(spec.time_column, kind="stable")  # "later" means later in time
    columns = [*spec.inference_columns] + ([spec.label.column] if purpose == "training" else [])
    expectations = [
        critical(gxe.ExpectTableColumnsToMatchSet, column_set=columns, exact_match=True),
        critical(
            gxe.ExpectTableRowCountToBeBetween,
            min_value=1,
            max_value=MAX_ROWS_FACTOR * max(partition_rows),
            notes=ROW_COUNT_NOTE,
        ),
        critical(gxe.ExpectColumnValuesToNotBeNull, column=spec.id_column),
        critical(gxe.ExpectColumnValuesToBeUnique, column=spec.id_column),
        critical(gxe.ExpectColumnValuesToBeInTypeList, column=spec.id_column, type_list=ID_TYPES),
        critical(gxe.ExpectColumnValuesToBeInTypeList, column=spec.time_column, type_list=DATETIME_TYPES),
        row_level(gxe.ExpectColumnValuesToNotBeNull, column=spec.time_column),
        row_level(
            gxe.ExpectColumnValuesToBeBetween,
            column=spec.time_column,
            min_value={"$PARAMETER": "partition_start"},
            max_value={"$PARAMETER": "partition_end"},
        ),
    ]
    for column in spec.numeric_features:
        expectations += numeric_expectations(gxe, column, reference[column], column in spec.pii)
    for column in spec.categorical_features:
        expectations += categorical_expectations(gxe, column, reference[column], column in spec.pii)
    if purpose == "training":
        expectations += [
            row_level(gxe.ExpectColumnValuesToNotBeNull, column=spec.label.column),
            row_level(
                gxe.ExpectColumnValuesToBeInSet,
                column=spec.label.column,
                value_set=label_values(reference[spec.label.column], spec),
                notes="The spec's label.classes"
                if spec.label.classes
                else "The values seen and the spec's positive value: list every class in label.classes",
            ),
        ]
    return expectations


def numeric_expectations(gxe, column: str, values: pd.Series, personal: bool) -> list:
    """Type, range (when the window shows a spread) and, if never missing there, not-null."""
    numbers = pd.to_numeric(values, errors="coerce")
    finite = numbers[numbers.abs() < math.inf]
    constant = finite.nunique() < 2  # e.g. a placeholder until the source fills the column
    bounds = None if personal or constant else widened_range(float(finite.min()), float(finite.max()))
    note = PERSONAL_NOTE if personal else (NO_RANGE_NOTE if bounds is None else None)
    expectations = [
        critical(gxe.ExpectColumnValuesToBeInTypeList, column=column, type_list=NUMERIC_TYPES, notes=note)
    ]
    if bounds is not None:
        expectations.append(
            row_level(
                gxe.ExpectColumnValuesToBeBetween,
                column=column,
                min_value=bounds[0],
                max_value=bounds[1],
                notes=RANGE_NOTE,
            )
        )
    if numbers.notna().all():
        expectations.append(row_level(gxe.ExpectColumnValuesToNotBeNull, column=column))
    return expectations


def widened_range(low: float, high: float) -> tuple[float, float]:
    """`low`..`high` (low < high) widened by RANGE_MARGIN times its scale, rounded outwards to two
    significant digits of the margin (readable in review)."""
    scale = max(high - low, abs(low), abs(high))
    margin = RANGE_MARGIN * scale
    exponent = math.floor(math.log10(margin)) - 1
    step, digits = 10.0**exponent, max(0, -exponent)
    return (
        round(math.floor((low - margin) / step) * step, digits),
        round(math.ceil((high + margin) / step) * step, digits),
    )


def categorical_expectations(gxe, column: str, values: pd.Series, personal: bool) -> list:
    """Type, value set (when the window lists the values in full) and, if never missing there,
    not-null."""
    present = values.dropna().astype(str)
    unseen = later_unseen_share(present)
    proposed_set = not personal and unseen <= UNSEEN_TOLERANCE
    if personal:
        note = PERSONAL_NOTE
    elif present.empty:
        note = "No value set proposed: the window holds no value of this column. Add one from its meaning."
    elif not proposed_set:
        note = (
            f"No value set proposed: {unseen:.0%} of the window's later rows have values its earlier "
            "rows lack, so it does not show them all (new values keep coming, or the window is too "
            "short). Add one if the column's values are a closed list."
        )
    else:
        note = None
    expectations = [
        critical(gxe.ExpectColumnValuesToBeInTypeList, column=column, type_list=STRING_TYPES, notes=note)
    ]
    if proposed_set:
        expectations.append(
            row_level(
                gxe.ExpectColumnValuesToBeInSet,
                column=column,
                value_set=sorted(present.unique()),
                mostly=VALUE_SET_MOSTLY,
                notes=VALUE_SET_NOTE,
            )
        )
    if values.notna().all():
        expectations.append(row_level(gxe.ExpectColumnValuesToNotBeNull, column=column))
    return expectations


def later_unseen_share(values: pd.Series) -> float:
    """The share of the later half of `values` (in time order) whose value the earlier half lacks:
    how much a set learnt on one stretch of the feed misses of the next. High for a column whose
    values keep arriving (campaigns, versions) and for one with more values than the window has
    rows to show; 1.0 when there are too few values to tell."""
    half = len(values) // 2
    if half == 0:
        return 1.0
    earlier, later = values.iloc[:half], values.iloc[half:]
    return float((~later.isin(set(earlier))).mean())


def label_values(values: pd.Series, spec: DatasetSpec) -> list:
    """Every valid label: the spec's classes, else those seen plus the positive one (a short window
    of a rare class may hold none of it)."""
    if spec.label.classes:
        return sorted(spec.label.classes)
    return sorted({*values.dropna().unique().tolist(), spec.label.positive})


def review_points(expectations: list) -> list[str]:
    """Each distinct note of `expectations`, with the columns it applies to."""
    columns: dict[str, list[str]] = {}
    for expectation in expectations:
        if expectation.notes:
            column = getattr(expectation, "column", None) or "rows"
            columns.setdefault(str(expectation.notes), []).append(column)
    return [f"{', '.join(names)}: {note}" for note, names in columns.items()]
