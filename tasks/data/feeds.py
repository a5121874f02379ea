"""Reading the feature and label feeds of a dataset, and writing the synthetic feed."""

from datetime import date

import pandas as pd
import pyarrow as pa
from prefect import task

from inferloop.core import catalog
from inferloop.core.dataset import DatasetSpec
from inferloop.core.errors import InferloopError
from inferloop.core.storage import Storage, StorageError
from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day


class MissingDataError(InferloopError, RuntimeError):
    """Partitions or labels needed for a step are not in the lake; the message says which."""


def join_on_ids(left: pd.DataFrame, right: pd.DataFrame, spec: DatasetSpec, **merge) -> pd.DataFrame:
    """`left` inner-joined to `right` on the id column (more `merge` arguments as pandas').

    One dataset's ids have one type in the lake, and predictions keep it. Predictions written
    before they did hold text ids that looked like integers as int64: when the two sides'
    types differ, the ids are compared as text ("123" matches 123), never a crash.
    """
    column = spec.id_column
    if left[column].dtype != right[column].dtype and not (
        pd.api.types.is_integer_dtype(left[column]) and pd.api.types.is_integer_dtype(right[column])
    ):
        left, right = (frame.assign(**{column: _id_text(frame[column])}) for frame in (left, right))
    return left.merge(right, on=column, how="inner", **merge)


def _id_text(ids: pd.Series) -> pd.Series:
    ids = ids.astype(object)
    return ids.where(ids.isna(), ids.map(str))


def prepare_features(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The model's input: spec features in spec order, numerics as float64, categoricals as str
    (a pandas categorical column, as dictionary-encoded parquet reads, stays one with str
    categories: the model encodes it per distinct value, not per row).

    One dtype per kind keeps training, the logged signature and scoring in agreement
    (an integer column with a null would otherwise turn float and break schema enforcement).
    """
    prepared = {}
    for column in spec.feature_columns:
        values = frame[column]
        if column in spec.numeric_features:
            prepared[column] = pd.to_numeric(values, errors="coerce").astype("float64", copy=False)
        elif isinstance(values.dtype, pd.CategoricalDtype):
            prepared[column] = values.cat.rename_categories(str)  # each category once, not each row
        else:
            prepared[column] = values.where(values.isna(), values.astype(str)).astype(object)
    # copy=False keeps each column as its own block: no second copy of the whole table.
    return pd.DataFrame(prepared, index=frame.index, copy=False)


def as_plain_columns(features: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as object strings: what a caller of the served model sends (the
    MLflow input example and signature)."""
    return features.astype(
        {c: object for c, t in features.dtypes.items() if isinstance(t, pd.CategoricalDtype)}
    )


def read_feature_partition(storage: Storage, spec: DatasetSpec, day: date) -> pd.DataFrame:
    files = partition_files(storage, spec, day)
    return pa.concat_tables([storage.read_table(f) for f in files], promote_options="default").to_pandas()


def partition_files(storage: Storage, spec: DatasetSpec, day: date) -> list[str]:
    """The parquet files of a day's feature partition; a clear error when there are none."""
    relative = catalog.features(spec.name, day)
    if not storage.exists(relative):
        raise MissingDataError(
            f"No {spec.name} partition for {day} at {storage.uri(relative)}: generate or import "
            f"it first (inferloop data generate ...)"
        )
    files = storage.data_files(relative)
    if not files:
        raise MissingDataError(f"{storage.uri(relative)} holds no parquet files")
    return files


def read_labels(storage: Storage, spec: DatasetSpec, start: date, end: date) -> pd.DataFrame:
    """Labels of events from `start` to `end`, read from the days they arrived on."""
    arrival_days = spec.partitioning.keys(spec.label_arrival(start), spec.label_arrival(end))
    present = [d for d in arrival_days if storage.exists(catalog.labels(spec.name, d))]
    if not present:
        raise MissingDataError(
            f"No labels have arrived for events {start}..{end} (looked in "
            f"{storage.uri(catalog.labels_table(spec.name))} for days {arrival_days[0]}..{arrival_days[-1]})"
        )
    columns = [spec.id_column, spec.label.column]
    tables = [storage.read_table(catalog.labels(spec.name, d), columns) for d in present]
    return pa.concat_tables(tables).to_pandas()


def load_labelled_day(storage: Storage, spec: DatasetSpec, day: date) -> pd.DataFrame:
    """One day's feature partition joined to its arrived labels (rows without one are left out:
    they cannot be trained on). The label column keeps its raw values."""
    features = read_feature_partition(storage, spec, day)
    labels = read_labels(storage, spec, day, day)
    if spec.id_column not in features.columns:
        raise MissingDataError(
            f"The {spec.name} partition for {day} has no id column "
            f"'{spec.id_column}'; it cannot be joined to its labels"
        )
    return join_on_ids(features, labels, spec, validate="one_to_one")


def positive_target(frame: pd.DataFrame, spec: DatasetSpec) -> pd.Series:
    """1 where the label is the spec's positive class, else 0."""
    return (frame[spec.label.column] == spec.label.positive).astype("int64")


@task(name="write-synthetic-feed")
def write_synthetic_feed(storage: Storage, spec: DatasetSpec, config: GeneratorConfig) -> list[date]:
    """Write features (by event day) and labels (by arrival day) for every generated day.

    Deterministic and idempotent: regenerating a day rewrites identical partitions.
    """
    if spec.partition != "day":
        raise InferloopError(
            f"The synthetic feed writes one partition per day, but the {spec.name} spec partitions by "
            f"{spec.partition}: set `partition: day`, or write the generated rows to a file and "
            "`inferloop data import` it"
        )
    written = []
    for index in range(config.days):
        features, labels = generate_day(config, index)
        day = config.day(index)
        storage.write_table(
            catalog.features_file(spec.name, day),
            pa.Table.from_pandas(features, preserve_index=False),
        )
        storage.write_table(
            catalog.labels_file(spec.name, spec.label_arrival(day), day),
            pa.Table.from_pandas(labels, preserve_index=False),
        )
        written.append(day)
    return written


def stored_partitions_in(
    storage: Storage, spec: DatasetSpec, start: date, end: date, hint: str
) -> list[date]:
    """The feature partitions of `start`..`end` the lake holds (a missing one is a gap in the
    feed); none at all is a MissingDataError that ends with `hint`, what the user can do."""
    stored = set(storage.list_partitions(catalog.features_table(spec.name)))
    keys = [key for key in spec.partitioning.keys(start, end) if key in stored]
    if not keys:
        raise MissingDataError(
            f"No {spec.name} partition from {start} to {end} in "
            f"{storage.uri(catalog.features_table(spec.name))}: {hint}"
        )
    return keys


def feature_partition_days(storage: Storage, spec: DatasetSpec) -> list[date]:
    try:
        return storage.list_partitions(catalog.features_table(spec.name))
    except StorageError:
        return []


def latest_labelled_day(storage: Storage, spec: DatasetSpec) -> date:
    """The newest event day whose labels have arrived and whose features exist."""
    arrived = {
        spec.partitioning.shift(d, -spec.label.delay_days)
        for d in storage.list_partitions(catalog.labels_table(spec.name))
    }
    candidates = sorted(arrived & set(feature_partition_days(storage, spec)))
    if not candidates:
        raise MissingDataError(
            f"No labelled {spec.name} days under {storage.uri('')}: generate or import data first "
            "(inferloop data generate)"
        )
    return candidates[-1]
