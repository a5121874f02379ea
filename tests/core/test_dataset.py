from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from inferloop.core.dataset import DatasetSpecError, load_dataset_spec
from inferloop.core.settings import REPO_ROOT

SPEC = REPO_ROOT / "datasets" / "transactions.yaml"
ROW_ORDER = {"start": "2026-01-01T00:00:00", "step": "30min"}


def write_spec(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(SPEC.read_text())
    change(raw)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_spec_describes_the_generator():
    from inferloop.tasks.data.synthetic import GeneratorConfig, generate_day

    spec = load_dataset_spec(SPEC)
    features, labels = generate_day(GeneratorConfig(rows_per_day=10), 0)
    assert list(features.columns) == spec.inference_columns
    assert set(labels.columns) >= {spec.id_column, spec.label.column}
    assert len(spec.numeric_features) == 10 and len(spec.categorical_features) == 4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda raw: raw["features"].update(amount="numerical"), "features.amount"),
        (lambda raw: raw.pop("label"), "label"),
        (lambda raw: raw["label"].pop("column"), "label.column"),
        (lambda raw: raw["features"].update(is_fraud="numeric"), "label.column 'is_fraud'"),
        (lambda raw: raw.update(drop=["amount"]), "drop lists feature columns"),
        (lambda raw: raw.update(expected_drift=["month"]), "expected_drift lists \\['month'\\]"),
        (lambda raw: raw.update(colour="blue"), "colour"),
        (lambda raw: raw.update(name="Has Spaces"), "name"),
        (lambda raw: raw.pop("time_column"), "time_column: Field required"),
        (lambda raw: raw.update(generate_id="sometimes"), "generate_id"),
        (
            lambda raw: raw.update(partition="year"),
            "partition: Input should be 'hour', 'day', 'week' or 'month'",
        ),
        (lambda raw: raw.update(time_format="%Y", time_from_row_order=ROW_ORDER), "give one of them"),
        (lambda raw: raw.update(time_format="%Q %Y"), "time_format: .*'%Q %Y' is not a strftime format"),
        (lambda raw: raw.update(time_from_row_order={"start": "2026-01-01"}), "time_from_row_order.step"),
        (
            lambda raw: raw.update(time_from_row_order=ROW_ORDER | {"step": "soon"}),
            "time_from_row_order.step",
        ),
        (lambda raw: raw.update(time_from_row_order=ROW_ORDER | {"step": "-5min"}), "longer than zero"),
        (
            lambda raw: raw.update(time_from_row_order=ROW_ORDER | {"start": "May"}),
            "time_from_row_order.start",
        ),
        (lambda raw: raw["label"].update(classes=[0, 2]), "label: .*positive 1 is not one of classes"),
        (lambda raw: raw["label"].update(classes=[1, "0"]), "label: .*must all have the type of positive"),
        (lambda raw: raw["label"].update(classes=[1, 1]), "label: .*lists a value twice"),
        (lambda raw: raw["label"].update(classes=[1]), "label.classes"),
    ],
)
def test_a_mistake_fails_naming_the_field(tmp_path, change, field):
    with pytest.raises(DatasetSpecError, match=field):
        load_dataset_spec(write_spec(tmp_path, change))


def test_missing_spec_file_says_which_setting_to_fix(tmp_path):
    with pytest.raises(DatasetSpecError, match="does not exist: point --spec or INFERLOOP_DATASET_SPEC"):
        load_dataset_spec(tmp_path / "nope.yaml")


def test_a_spec_path_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(DatasetSpecError, match="is a directory: point --spec or INFERLOOP_DATASET_SPEC"):
        load_dataset_spec(tmp_path)


def test_elec2_spec_rebuilds_time_and_id_from_the_row_order():
    spec = load_dataset_spec(REPO_ROOT / "datasets" / "elec2.yaml")
    assert spec.generate_id and spec.time_from_row_order.step_timedelta == timedelta(minutes=30)
    assert spec.time_from_row_order.start == datetime(1996, 5, 7)
    assert spec.label.classes == ["UP", "DOWN"] and spec.label.positive == "UP"
    assert spec.categorical_features == ["day"] and len(spec.numeric_features) == 6
    assert spec.drop == ["date"] and spec.partition == "day"


def test_a_spec_without_the_new_fields_keeps_their_defaults():
    spec = load_dataset_spec(SPEC)
    assert not spec.generate_id and spec.time_from_row_order is None and spec.time_format is None
    assert spec.label.classes is None and spec.partition == "day"
