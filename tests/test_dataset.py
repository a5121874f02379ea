from pathlib import Path

import pytest
import yaml

from inferloop.dataset import DatasetSpecError, load_dataset_spec
from inferloop.settings import REPO_ROOT

SPEC = REPO_ROOT / "datasets" / "transactions.yaml"


def write_spec(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(SPEC.read_text())
    change(raw)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_spec_describes_the_generator():
    from inferloop.synthetic import GeneratorConfig, generate_day

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
        (lambda raw: raw.update(colour="blue"), "colour"),
        (lambda raw: raw.update(name="Has Spaces"), "name"),
    ],
)
def test_a_mistake_fails_naming_the_field(tmp_path, change, field):
    with pytest.raises(DatasetSpecError, match=field):
        load_dataset_spec(write_spec(tmp_path, change))


def test_missing_spec_file_says_which_setting_to_fix(tmp_path):
    with pytest.raises(DatasetSpecError, match="INFERLOOP_DATASET_SPEC"):
        load_dataset_spec(tmp_path / "nope.yaml")
