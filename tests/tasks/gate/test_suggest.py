"""`inferloop expectations suggest` (tasks/gate/suggest.py): suites proposed from a short early
window are written into the project for review, and keep accepting a feed that drifts after it
(means shift, categories grow, partitions shrink) while a broken partition is still refused."""

import json
import shutil
from datetime import timedelta
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from inferloop.core import catalog
from inferloop.core.dataset import PersonalColumn
from inferloop.core.storage import lake_storage
from inferloop.tasks.data.feeds import MissingDataError, write_synthetic_feed
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day
from inferloop.tasks.gate.partition_gate import validate_partition
from inferloop.tasks.gate.suggest import (
    NO_RANGE_NOTE,
    PERSONAL_NOTE,
    RANGE_MARGIN,
    later_unseen_share,
    propose_suites,
    suggest_expectations,
)


@pytest.fixture
def proposal_setup(settings, tmp_path):
    project = tmp_path / "expectations"
    shutil.copytree(settings.gate.expectations_dir, project)
    for suite in (project / "gx" / "expectations").glob("transactions_*.json"):
        suite.unlink()  # a dataset with no suites yet
    settings = settings.with_overrides(expectations_dir=project)
    return settings, lake_storage(settings.lake), project


def test_both_suites_are_written_into_the_project_and_accept_their_window(proposal_setup):
    settings, storage, project = proposal_setup
    days = write_synthetic_feed.fn(storage, settings.dataset, GeneratorConfig(days=3, rows_per_day=500))
    proposal = propose_suites(storage, settings.dataset, days[0], days[1], settings)
    assert proposal.paths == [
        project / "gx" / "expectations" / "transactions_training.json",
        project / "gx" / "expectations" / "transactions_inference.json",
    ]
    assert all(path.exists() for path in proposal.paths)
    for purpose in ("training", "inference"):
        report = validate_partition.fn(
            storage, settings.dataset, purpose, days[1], settings.gate, settings.scoring
        )
        assert (report.decision, report.rows_quarantined) == ("accepted", 0), report.reasons
    # What to review, once per rule, with the columns it applies to.
    (ranges,) = [point for point in proposal.review if "min_value to 0" in point]
    assert ranges.startswith(", ".join(settings.dataset.numeric_features) + ": ")
    assert any(point.startswith("rows: At least 1 row") for point in proposal.review)


def test_a_window_outside_the_lake_is_a_clear_error(proposal_setup):
    settings, storage, _ = proposal_setup
    days = write_synthetic_feed.fn(storage, settings.dataset, GeneratorConfig(days=1, rows_per_day=50))
    later = days[-1] + timedelta(days=5)
    with pytest.raises(MissingDataError, match=f"No transactions partition for {later}"):
        propose_suites(storage, settings.dataset, later, later, settings)


# A feed that drifts after its first three days: amounts grow, a ratio turns negative, a new
# merchant category takes a fifth of the rows, and partitions range from 700 rows to 3.
WINDOW_ROWS = (600, 700, 300)
LATER_ROWS = (40, 3, 400)
NEW_CATEGORY, NEW_CATEGORY_SHARE = "crypto", 0.2


def drifted(features: pd.DataFrame, index: int) -> pd.DataFrame:
    rng = np.random.default_rng(index)
    growth = 1 + 0.5 * (index - len(WINDOW_ROWS) + 1)
    new = rng.random(len(features)) < NEW_CATEGORY_SHARE
    return features.assign(
        amount=features["amount"] * growth,
        amount_to_avg_ratio=features["amount_to_avg_ratio"] - 1.5,
        merchant_category=features["merchant_category"].where(~new, NEW_CATEGORY),
    )


def write_day(storage, spec, index: int, rows: int, change=None) -> pd.DataFrame:
    features, labels = generate_day(GeneratorConfig(rows_per_day=rows), index)
    if change is not None:
        features = change(features)
    day = GeneratorConfig().day(index)
    table = pa.Table.from_pandas(features, preserve_index=False)
    storage.write_table(catalog.features_file(spec.name, day), table)
    storage.write_table(
        catalog.labels_file(spec.name, spec.label_arrival(day), day),
        pa.Table.from_pandas(labels, preserve_index=False),
    )
    return features


@pytest.fixture
def early_proposal(proposal_setup):
    """Suites proposed from the drifting feed's first three days only."""
    settings, storage, _ = proposal_setup
    spec = settings.dataset
    for index, rows in enumerate(WINDOW_ROWS):
        write_day(storage, spec, index, rows)
    config = GeneratorConfig()
    propose_suites(storage, spec, config.day(0), config.day(len(WINDOW_ROWS) - 1), settings)
    return settings, storage


def gate(settings, storage, index: int, purpose: str = "inference"):
    day = GeneratorConfig().day(index)
    return validate_partition.fn(storage, settings.dataset, purpose, day, settings.gate, settings.scoring)


def test_suites_proposed_from_an_early_window_accept_the_drifted_feed_and_quarantine_new_categories(
    early_proposal,
):
    settings, storage = early_proposal
    for index, rows in enumerate(LATER_ROWS, start=len(WINDOW_ROWS)):
        features = write_day(storage, settings.dataset, index, rows, partial(drifted, index=index))
        assert (features["amount_to_avg_ratio"] < 0).any()
        new_category = int((features["merchant_category"] == NEW_CATEGORY).sum())
        report = gate(settings, storage, index, "training" if rows == max(LATER_ROWS) else "inference")
        assert report.decision == "accepted", report.reasons
        # Only the rows of the unseen category are held back, each with its reason.
        assert (report.rows_quarantined, report.rows_passed) == (new_category, rows - new_category)
    assert new_category  # the last partition's quarantine:
    quarantined = storage.read_table(catalog.quarantine(report.suite, GeneratorConfig().day(index)))
    quarantined = quarantined.to_pandas()
    failed = {"expect_column_values_to_be_in_set(merchant_category)"}
    assert set(quarantined["_failed_expectations"]) == failed
    assert {json.loads(v)["merchant_category"] for v in quarantined["_offending_values"]} == {NEW_CATEGORY}


BROKEN = {
    "wrong type": (
        lambda features: features.assign(amount=features["amount"].map(str)),
        "expect_column_values_to_be_in_type_list(amount): column 'amount' has type object",
    ),
    "all nulls": (
        lambda features: features.assign(account_age_days=np.nan),
        "100.0% of rows fail row-level checks, more than INFERLOOP_MAX_QUARANTINE_SHARE=10.0% "
        "(most: expect_column_values_to_not_be_null(account_age_days) 100.0%)",
    ),
    "a column missing": (lambda features: features.drop(columns=["channel"]), "missing columns ['channel']"),
    "most rows an unseen category": (
        lambda features: features.assign(merchant_category=NEW_CATEGORY),
        "expect_column_values_to_be_in_set(merchant_category): 100.0% of rows fail, tolerated 50.0%",
    ),
}


def test_a_broken_partition_is_still_refused_with_its_reason(early_proposal):
    settings, storage = early_proposal
    for index, (case, (breaking, reason)) in enumerate(BROKEN.items(), start=10):
        write_day(storage, settings.dataset, index, 200, breaking)
        report = gate(settings, storage, index)
        assert report.refused and any(reason in r for r in report.reasons), (case, report.reasons)


# The rules themselves, on frames.


def by_type(expectations: list, kind: str, column: str | None = None) -> list:
    return [
        e.configuration
        for e in expectations
        if e.configuration.type == kind and e.configuration.kwargs.get("column") == column
    ]


@pytest.fixture
def reference(spec):
    features, labels = generate_day(GeneratorConfig(rows_per_day=1_000), 0)
    frame = features.merge(labels[[spec.id_column, spec.label.column]], on=spec.id_column)
    frame.loc[:9, "distance_from_home_km"] = np.nan  # a column that has nulls in the reference
    frame.loc[:4, "failed_logins_7d"] = -3.0  # and one that went negative
    return frame


def test_the_proposed_schema_is_exact_and_the_label_only_in_training(reference, spec):
    for purpose, label in (("inference", []), ("training", [spec.label.column])):
        proposed = suggest_expectations(reference, spec, purpose, [1_000])
        (columns,) = by_type(proposed, "expect_table_columns_to_match_set")
        assert columns.kwargs["column_set"] == [*spec.inference_columns, *label]
        assert columns.meta == {"severity": "critical"}
        assert bool(by_type(proposed, "expect_column_values_to_be_in_set", spec.label.column)) == bool(label)


def test_row_counts_allow_small_partitions_and_generous_growth(reference, spec):
    proposed = suggest_expectations(reference, spec, "inference", [800, 1_000])
    (rows,) = by_type(proposed, "expect_table_row_count_to_be_between")
    assert (rows.kwargs["min_value"], rows.kwargs["max_value"]) == (1, 100_000)


@pytest.mark.parametrize("column", ["amount", "failed_logins_7d", "hour_of_day"])
def test_numeric_ranges_are_widened_by_their_scale_and_infer_no_sign(reference, spec, column):
    proposed = suggest_expectations(reference, spec, "inference", [1_000])
    (bounds,) = by_type(proposed, "expect_column_values_to_be_between", column)
    low, high = reference[column].min(), reference[column].max()
    margin = RANGE_MARGIN * max(high - low, abs(low), abs(high))
    # Rounded outwards by at most a tenth of the margin, so never narrower than the rule.
    assert low - 1.1 * margin <= bounds.kwargs["min_value"] <= low - margin < 0
    assert high + margin <= bounds.kwargs["max_value"] <= high + 1.1 * margin
    assert bounds.meta == {"severity": "row"} and "mostly" not in bounds.kwargs


@pytest.mark.parametrize("constant", [0.0, 0.003467, np.nan])
def test_a_column_constant_in_the_window_gets_no_range_and_says_so(reference, spec, constant):
    """A placeholder until the source fills the column shows nothing of its spread."""
    proposed = suggest_expectations(reference.assign(failed_logins_7d=constant), spec, "inference", [1_000])
    assert not by_type(proposed, "expect_column_values_to_be_between", "failed_logins_7d")
    (types,) = by_type(proposed, "expect_column_values_to_be_in_type_list", "failed_logins_7d")
    assert types.notes == NO_RANGE_NOTE


def test_nulls_and_categories_seen_in_the_reference_are_allowed(reference, spec):
    proposed = suggest_expectations(reference, spec, "inference", [1_000])
    assert by_type(proposed, "expect_column_values_to_not_be_null", "amount")
    assert not by_type(proposed, "expect_column_values_to_not_be_null", "distance_from_home_km")
    (channels,) = by_type(proposed, "expect_column_values_to_be_in_set", "channel")
    assert channels.kwargs["value_set"] == sorted(reference["channel"].unique())
    assert channels.kwargs["mostly"] == pytest.approx(0.5)


def test_a_column_whose_values_keep_arriving_gets_no_value_set(reference, spec):
    """Campaign-like values (new ones every hour) and one value per row: the window cannot list
    them, so a set would refuse the next partitions; the note says why."""
    hour = reference["event_time"].dt.hour.astype(str)
    for values in ("campaign-" + hour, "device-" + reference.index.astype(str)):
        proposed = suggest_expectations(reference.assign(device=values), spec, "inference", [1_000])
        assert not by_type(proposed, "expect_column_values_to_be_in_set", "device")
        (types,) = by_type(proposed, "expect_column_values_to_be_in_type_list", "device")
        assert types.notes.startswith("No value set proposed: ") and "later rows" in types.notes


def test_the_unseen_share_is_measured_on_the_later_half_of_the_window():
    assert later_unseen_share(pd.Series(["a", "b", "a", "b"])) == 0.0
    assert later_unseen_share(pd.Series(["a", "a", "a", "b"])) == 0.5
    assert later_unseen_share(pd.Series(["a"])) == 1.0  # too few to tell


def test_label_values_come_from_the_spec_not_only_the_window(reference, spec):
    negatives_only = reference.assign(**{spec.label.column: 0})
    proposed = suggest_expectations(negatives_only, spec, "training", [1_000])
    (labels,) = by_type(proposed, "expect_column_values_to_be_in_set", spec.label.column)
    assert labels.kwargs["value_set"] == [0, 1]
    classes = spec.model_copy(update={"label": spec.label.model_copy(update={"classes": [1, 0, 2]})})
    (labels,) = by_type(
        suggest_expectations(negatives_only, classes, "training", [1_000]),
        "expect_column_values_to_be_in_set",
        spec.label.column,
    )
    assert labels.kwargs["value_set"] == [0, 1, 2]


def test_no_value_of_a_personal_column_enters_the_suite(reference, spec):
    personal = spec.model_copy(update={"pii": {"country": PersonalColumn(), "amount": PersonalColumn()}})
    proposed = suggest_expectations(reference, personal, "training", [1_000])
    for column in ("country", "amount"):
        assert [e.type for e in by_type(proposed, "expect_column_values_to_be_in_type_list", column)]
        assert not by_type(proposed, "expect_column_values_to_be_in_set", column)
        assert not by_type(proposed, "expect_column_values_to_be_between", column)
        (types,) = by_type(proposed, "expect_column_values_to_be_in_type_list", column)
        assert types.notes == PERSONAL_NOTE
    text = json.dumps([e.configuration.to_json_dict() for e in proposed])
    assert not any(f'"{country}"' in text for country in reference["country"].unique())
