"""Reading the feeds (tasks/data/feeds.py): features by event day, labels by the day they arrive,
the model's input types, and the synthetic feed written where the readers look."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from inferloop.core import catalog
from inferloop.core.errors import InferloopError
from inferloop.core.storage import Storage
from inferloop.tasks.data.feeds import (
    MissingDataError,
    as_plain_columns,
    join_on_ids,
    latest_labelled_day,
    load_labelled_day,
    positive_target,
    prepare_features,
    read_feature_partition,
    read_labels,
    write_synthetic_feed,
)
from inferloop.tasks.data.synthetic import generate_day
from tests.fixtures.synthetic_lake import FEED as CONFIG
from tests.fixtures.synthetic_lake import FEED_DAYS as DAYS
from tests.fixtures.synthetic_lake import synthetic_lake


@pytest.fixture
def lake(spec, tmp_path) -> Storage:
    return synthetic_lake(spec, tmp_path / "lake")


def test_features_are_written_by_event_day_and_labels_by_arrival_day(lake, spec):
    features, labels = generate_day(CONFIG, 1)
    written = read_feature_partition(lake, spec, DAYS[1])
    pd.testing.assert_frame_equal(written, features)
    arrived = DAYS[1] + timedelta(days=spec.label.delay_days)
    stored = lake.read_table(catalog.labels_file(spec.name, arrived, DAYS[1])).to_pandas()
    pd.testing.assert_frame_equal(stored, labels)


def test_regenerating_the_feed_rewrites_identical_partitions(lake, spec):
    before = lake.sha256(catalog.features_file(spec.name, DAYS[0]))
    write_synthetic_feed.fn(lake, spec, CONFIG)
    assert lake.sha256(catalog.features_file(spec.name, DAYS[0])) == before


def test_labels_of_an_event_range_come_from_their_arrival_days(lake, spec):
    labels = read_labels(lake, spec, DAYS[0], DAYS[1])
    expected = pd.concat([generate_day(CONFIG, i)[1] for i in (0, 1)])
    assert sorted(labels[spec.id_column]) == sorted(expected[spec.id_column])
    assert list(labels.columns) == [spec.id_column, spec.label.column]
    with pytest.raises(MissingDataError, match="No labels have arrived for events 2026-01-10"):
        read_labels(lake, spec, date(2026, 1, 10), date(2026, 1, 10))


def test_a_labelled_day_keeps_only_rows_whose_label_arrived(lake, spec):
    arrived = DAYS[0] + timedelta(days=spec.label.delay_days)
    path = catalog.labels_file(spec.name, arrived, DAYS[0])
    labels = lake.read_table(path).to_pandas()
    lake.write_table(path, pa.Table.from_pandas(labels.iloc[50:], preserve_index=False))  # 50 still pending

    day = load_labelled_day(lake, spec, DAYS[0])
    assert len(day) == CONFIG.rows_per_day - 50
    assert set(day[spec.id_column]) == set(labels[spec.id_column].iloc[50:])
    assert (day[spec.label.column].to_numpy() == labels[spec.label.column].iloc[50:].to_numpy()).all()


def test_a_missing_partition_says_how_to_create_it(lake, spec):
    with pytest.raises(MissingDataError, match=r"No transactions partition for 2026-02-01 .*inferloop data"):
        read_feature_partition(lake, spec, date(2026, 2, 1))


def test_a_partition_without_the_id_column_cannot_be_joined_to_labels(lake, spec):
    features = generate_day(CONFIG, 2)[0].drop(columns=[spec.id_column])
    lake.write_table(
        catalog.features_file(spec.name, DAYS[2]), pa.Table.from_pandas(features, preserve_index=False)
    )
    with pytest.raises(MissingDataError, match="no id column 'transaction_id'"):
        load_labelled_day(lake, spec, DAYS[2])


def test_the_latest_labelled_day_needs_both_features_and_arrived_labels(lake, spec, tmp_path):
    assert latest_labelled_day(lake, spec) == DAYS[-1]
    lake.delete_dir(catalog.labels(spec.name, DAYS[-1] + timedelta(days=spec.label.delay_days)))
    assert latest_labelled_day(lake, spec) == DAYS[-2]
    with pytest.raises(MissingDataError, match="No labelled transactions days"):
        latest_labelled_day(Storage((tmp_path / "empty").as_uri()), spec)


def test_model_input_has_one_dtype_per_kind_in_spec_order(spec):
    frame = generate_day(CONFIG, 0)[0].head(4)
    frame["tx_count_1h"] = pd.array([1, None, 3, 4], dtype="Int64")  # an integer column with a null
    frame["channel"] = frame["channel"].astype("category")
    frame["device"] = pd.Series([1, None, "tablet", 2.5], dtype=object)  # mixed types, as a CSV gives

    prepared = prepare_features(frame, spec)
    assert list(prepared.columns) == spec.feature_columns
    assert all(prepared[c].dtype == np.float64 for c in spec.numeric_features)
    assert np.isnan(prepared["tx_count_1h"].iloc[1])
    assert isinstance(prepared["channel"].dtype, pd.CategoricalDtype)
    assert prepared["device"].tolist()[0] == "1" and prepared["device"].isna().tolist()[1]
    assert prepared["device"].tolist()[3] == "2.5"

    plain = as_plain_columns(prepared)
    assert (
        plain["channel"].dtype == object
        and plain["channel"].tolist() == frame["channel"].astype(str).tolist()
    )


def test_the_positive_class_comes_from_the_spec(spec):
    frame = pd.DataFrame({spec.label.column: [spec.label.positive, 0, spec.label.positive]})
    assert positive_target(frame, spec).tolist() == [1, 0, 1]


def test_the_synthetic_feed_refuses_a_spec_not_partitioned_by_day(lake, spec):
    monthly = spec.model_copy(update={"partition": "month"})
    with pytest.raises(InferloopError, match="partitions by month: set `partition: day`"):
        write_synthetic_feed.fn(lake, monthly, CONFIG)


@pytest.mark.parametrize(
    ("left_ids", "right_ids", "joined"),
    [
        (["tx-1", "tx-2", "tx-3"], ["tx-3", "tx-1"], ["tx-1", "tx-3"]),
        ([1, 2, 3], pd.array([3, 1], dtype="Int64"), [1, 3]),
        # Predictions written before ids were kept exactly hold text ids that looked like
        # integers as int64: compared as text, never "merge on object and int64 columns".
        (["1", "2", "3"], [3, 1], ["1", "3"]),
        ([1, 2, 3], ["3", "1"], ["1", "3"]),
    ],
)
def test_rows_are_joined_on_their_ids_whatever_their_type(spec, left_ids, right_ids, joined):
    left = pd.DataFrame({spec.id_column: left_ids, "score": [0.1, 0.2, 0.3]})
    right = pd.DataFrame({spec.id_column: right_ids, "is_fraud": [1, 0]})
    result = join_on_ids(left, right, spec, validate="one_to_one")
    assert result[spec.id_column].tolist() == joined
    assert result["score"].tolist() == [0.1, 0.3] and result["is_fraud"].tolist() == [0, 1]
