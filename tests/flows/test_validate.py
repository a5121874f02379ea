"""The validate flow: the gate alone on one partition. Bad rows are quarantined with their reasons
(rows in = passed + quarantined); a broken partition is refused naming the column, reported and
recorded, not raised."""

import pytest

from inferloop.core import catalog
from inferloop.core.settings import SettingsError, load_settings
from inferloop.core.storage import lake_storage
from inferloop.flows.validate import validate
from inferloop.tasks.data.synthetic import GeneratorConfig
from tests.flows.conftest import ROWS_PER_DAY, write_feed

# Day 1: about 4% of rows with a null distance, a negative amount or an unknown merchant category.
# Day 2: the producer renamed `amount` to `amt`.
FAULTS = GeneratorConfig(
    scenario="quality_faults", days=3, rows_per_day=ROWS_PER_DAY, fault_days=(1,), renamed_column_days=(2,)
)


@pytest.fixture
def faulty(lake):
    days = write_feed(FAULTS)
    settings = load_settings()
    return settings, lake_storage(settings.lake), days


def test_bad_rows_are_quarantined_with_their_reasons_and_the_rest_pass(faulty):
    settings, storage, days = faulty
    report = validate(partition_date=days[1])

    assert report.decision == "accepted" and report.suite == "transactions_inference"
    assert report.rows_in == ROWS_PER_DAY == report.rows_passed + report.rows_quarantined
    features = storage.read_table(catalog.features(settings.dataset.name, days[1])).to_pandas()
    bad = features[
        (features["amount"] < 0)
        | features["distance_from_home_km"].isna()
        | (features["merchant_category"] == "crypto_atm_unknown")
    ]
    quarantined = storage.read_table(catalog.quarantine(report.suite, days[1])).to_pandas()
    assert report.rows_quarantined == len(quarantined) == len(bad) > 0
    assert set(quarantined["transaction_id"]) == set(bad["transaction_id"])
    negative = quarantined[quarantined["amount"] < 0]
    assert (
        negative["_failed_expectations"]
        .str.contains("expect_column_values_to_be_between(amount)", regex=False)
        .all()
    )
    failed = {e.name: e.unexpected_count for e in report.failed}
    assert failed["expect_column_values_to_be_between(amount)"] == (features["amount"] < 0).sum()
    assert report.quarantine_uri == storage.uri(catalog.quarantine(report.suite, days[1]))


def test_a_renamed_column_refuses_the_partition_naming_it_without_raising(faulty):
    _, storage, days = faulty
    report = validate(partition_date=days[2])

    assert report.decision == "refused"
    assert any("missing columns ['amount']" in reason for reason in report.reasons), report.reasons
    assert (report.rows_in, report.rows_refused, report.rows_passed, report.rows_quarantined) == (
        ROWS_PER_DAY,
        ROWS_PER_DAY,
        0,
        0,
    )
    assert report.quarantine_uri is None
    assert not storage.exists(catalog.quarantine(report.suite, days[2]))
    # The verdict is kept for monitoring, which must not read a refused day as a model problem.
    recorded = storage.read_json(catalog.validation_report(report.suite, days[2]))
    assert recorded["decision"] == "refused" and recorded["reasons"] == report.reasons


def test_the_training_suite_checks_the_label_too(faulty):
    _, _, days = faulty
    report = validate(partition_date=days[0], purpose="training")
    assert report.suite == "transactions_training" and report.decision == "accepted"
    assert "expect_column_values_to_be_in_set(is_fraud)" in {e.name for e in report.expectations}
    assert report.rows_in == ROWS_PER_DAY == report.rows_passed


def test_a_knob_passed_as_an_override_applies_to_that_run_only(faulty):
    """The same partition (about 4% bad rows) passes under the default 10% limit and is refused
    when a run lowers it: a UI run or a deployment changes a knob without the environment."""
    _, _, days = faulty
    strict = validate(partition_date=days[1], overrides={"max_quarantine_share": 0.01})

    assert strict.decision == "refused"
    assert any("INFERLOOP_MAX_QUARANTINE_SHARE=1.0%" in reason for reason in strict.reasons), strict.reasons
    assert validate(partition_date=days[1]).decision == "accepted"


def test_an_unknown_override_fails_naming_it(faulty):
    _, _, days = faulty
    with pytest.raises(SettingsError, match="max_quarantine_shares"):
        validate(partition_date=days[1], overrides={"max_quarantine_shares": 0.01})
