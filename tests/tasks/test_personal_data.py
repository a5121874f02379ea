"""What each step does with the spec's personal columns: the quarantines keep keyed hashes, the
reference profile and the input example keep no values.
(tests/e2e/test_personal_data.py searches every store after the whole loop.)"""

import json
import zipfile

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import skops.io as sio

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec, load_dataset_spec
from inferloop.core.feature_codes import PERSONAL_BUCKETS
from inferloop.core.personal_data import Pseudonymiser
from inferloop.core.settings import load_settings
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import prepare_features
from inferloop.tasks.data.importing import import_source
from inferloop.tasks.data.synthetic import GeneratorConfig
from inferloop.tasks.gate.expectations import row_level
from inferloop.tasks.gate.row_checks import any_failed, describe_failed_rows, expectation_name, row_failures
from inferloop.tasks.model.evaluation import reference_profile
from inferloop.tasks.model.training import PERSONAL_PLACEHOLDER, fitted, personal_values_withheld
from tests.fixtures.personal_data import (
    NAME,
    NOT_A_NUMBER_AGE,
    NOT_A_NUMBER_ROW,
    TEXT_MARKER,
    personal_source,
    personal_spec,
)


@pytest.fixture
def spec(tmp_path) -> DatasetSpec:
    return load_dataset_spec(personal_spec(tmp_path))


@pytest.fixture
def personal(spec, workdir, monkeypatch) -> Pseudonymiser:
    monkeypatch.setenv("INFERLOOP_PERSONAL_DATA_KEY", "test-key")
    return Pseudonymiser.for_spec(spec, load_settings().gate)


def test_a_quarantined_row_keeps_its_personal_values_only_as_keyed_hashes(personal):
    data = pa.table({"transaction_id": [1, 2], "customer_age": [-3917.604428, 40.0], "amount": [-5.0, 9.0]})
    expectations = [
        row_level(gxe.ExpectColumnValuesToBeBetween, column=c, min_value=0.0).configuration
        for c in ("customer_age", "amount")
    ]
    masks = row_failures(data, expectations, {})
    bad = any_failed(masks, data.num_rows)
    rows = describe_failed_rows(data, {expectation_name(c): c for c in expectations}, masks, bad, personal)
    assert rows["customer_age"].tolist() == [personal.value(-3917.604428)]
    assert rows["customer_age"][0].startswith("hmac-sha256:")
    assert json.loads(rows["_offending_values"][0]) == {
        "amount": "-5.0",  # not personal: the value, as before
        "customer_age": personal.value(-3917.604428),
    }
    assert "3917" not in rows.to_csv()


def test_the_import_quarantine_keeps_personal_values_only_as_keyed_hashes(spec, personal, tmp_path):
    source = personal_source(GeneratorConfig(days=1, rows_per_day=20))
    source.to_csv(tmp_path / "export.csv", index=False)
    lake = Storage((tmp_path / "lake").as_uri())
    summary = import_source.fn(lake, spec, str(tmp_path / "export.csv"), personal=personal)
    assert summary.rows_quarantined == 1 and summary.reasons == {"customer_age: not a number": 1}
    quarantined = lake.read_table(catalog.import_quarantine_file(NAME, summary.source_sha256)).to_pandas()
    assert quarantined["customer_age"].tolist() == [personal.value(NOT_A_NUMBER_AGE)]
    email = source.loc[NOT_A_NUMBER_ROW, "customer_email"]
    assert quarantined["customer_email"].tolist() == [personal.value(email)]  # a dropped column too
    assert quarantined["_reasons"].tolist() == ["customer_age: not a number"]  # no value quoted
    assert TEXT_MARKER not in quarantined.to_csv()


def test_the_reference_profile_holds_no_personal_feature(spec):
    frame = pd.DataFrame({column: [1.0, 2.0] for column in spec.numeric_features})
    frame = frame.assign(**{column: ["a", "b"] for column in spec.categorical_features})
    profile = reference_profile(frame, np.array([0.1, 0.9]), spec)
    assert set(profile["features"]) == set(spec.features) - {"customer_age", "customer_postcode"}


def test_the_input_example_withholds_personal_values_but_keeps_their_types(spec):
    example = pd.DataFrame(
        {"amount": [1.0, 2.0], "customer_age": [4821.739153, 33.0], "customer_postcode": ["zq-1", "zq-2"]}
    )
    withheld = personal_values_withheld(example, spec)
    assert withheld["customer_age"].isna().all() and withheld["customer_age"].dtype == np.float64
    assert withheld["customer_postcode"].tolist() == [PERSONAL_PLACEHOLDER] * 2
    assert withheld["amount"].tolist() == [1.0, 2.0]


def test_the_model_scores_a_personal_category_without_keeping_any_value(spec, tmp_path):
    source = personal_source(GeneratorConfig(days=2, rows_per_day=300))
    source["customer_age"] = pd.to_numeric(source["customer_age"], errors="coerce")
    model = fitted(source, spec)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    saved = path.read_bytes() + b"".join(
        zipfile.ZipFile(path).read(member) for member in zipfile.ZipFile(path).namelist()
    )
    assert TEXT_MARKER.encode() not in saved
    encoder = model.named_steps["encode"]
    codes = encoder.transform(prepare_features(source, spec))[
        :, spec.categorical_features.index("customer_postcode")
    ]
    assert set(np.unique(codes)) <= set(range(PERSONAL_BUCKETS)) and len(np.unique(codes)) > 30
    # The same value has the same code in every row, as a dictionary column and as text.
    as_category = prepare_features(source.astype({"customer_postcode": "category"}), spec)
    again = encoder.transform(as_category)[:, spec.categorical_features.index("customer_postcode")]
    assert np.array_equal(codes, again)
    by_value = pd.Series(codes).groupby(source["customer_postcode"].to_numpy()).nunique()
    assert (by_value == 1).all()
