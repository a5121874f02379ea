"""Personal columns in the dataset spec, and the keyed hash that stands in for their values."""

import hashlib
import hmac
import stat

import pandas as pd
import pytest
from typer.testing import CliRunner

from inferloop.cli.commands import app
from inferloop.core.dataset import DatasetSpecError, load_dataset_spec
from inferloop.core.errors import InferloopError
from inferloop.core.personal_data import Pseudonymiser, personal_data_key
from inferloop.core.settings import load_settings
from tests.fixtures.personal_data import personal_spec


def test_a_spec_marks_personal_columns_and_whether_the_model_may_use_them(tmp_path):
    spec = load_dataset_spec(personal_spec(tmp_path))
    assert spec.personal_columns == ["customer_age", "customer_postcode", "customer_email"]
    assert spec.pii["customer_age"].feature == "allowed" and spec.pii["customer_email"].feature == "forbidden"
    assert {"customer_age", "customer_postcode"} <= set(spec.features)
    assert set(spec.profiled_features) == set(spec.features) - {"customer_age", "customer_postcode"}


def test_a_spec_that_forbids_a_personal_feature_it_lists_fails_naming_it(tmp_path):
    with pytest.raises(DatasetSpecError) as error:
        load_dataset_spec(personal_spec(tmp_path, forbid_age=True))
    message = str(error.value)
    assert "pii.customer_age forbids 'customer_age' as a feature, but it is listed under features" in message
    assert "remove it from features" in message and "set pii.customer_age.feature to allowed" in message


def test_a_personal_column_the_spec_does_not_have_is_refused(tmp_path):
    path = personal_spec(tmp_path)
    path.write_text(path.read_text() + "  customer_phone: true\n")
    with pytest.raises(DatasetSpecError, match="pii lists 'customer_phone', which is neither a feature nor"):
        load_dataset_spec(path)


def test_training_on_a_spec_that_forbids_a_listed_personal_feature_fails_naming_it(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_DATASET_SPEC", str(personal_spec(workdir, forbid_age=True)))
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    output = " ".join(result.output.split())
    assert "pii.customer_age forbids 'customer_age' as a feature" in output
    assert "remove it from features" in output


@pytest.fixture
def key_file(workdir, monkeypatch):
    path = workdir / "secrets" / "personal_data.key"
    monkeypatch.setenv("INFERLOOP_PERSONAL_DATA_KEY_FILE", str(path))
    return path


def test_the_key_is_generated_once_private_and_reused(key_file):
    settings = load_settings()
    key = personal_data_key(settings.gate)
    path = settings.gate.personal_data_key_file
    assert path == key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 64
    assert personal_data_key(load_settings().gate) == key


def test_an_empty_key_file_is_an_error_saying_what_to_do(key_file):
    key_file.parent.mkdir()
    key_file.write_text("\n")
    with pytest.raises(InferloopError, match="is empty: restore it from a backup"):
        personal_data_key(load_settings().gate)


def test_a_configured_key_wins_and_nothing_is_generated(workdir, monkeypatch):
    monkeypatch.setenv("INFERLOOP_PERSONAL_DATA_KEY", "team-secret")
    monkeypatch.setenv("INFERLOOP_PERSONAL_DATA_KEY_FILE", str(workdir / "unused.key"))
    settings = load_settings()
    assert personal_data_key(settings.gate) == b"team-secret"
    assert not (workdir / "unused.key").exists()
    assert "team-secret" not in repr(settings)


def test_personal_values_become_their_keyed_hash(tmp_path, key_file):
    spec = load_dataset_spec(personal_spec(tmp_path))
    personal = Pseudonymiser.for_spec(spec, load_settings().gate)
    frame = pd.DataFrame({"customer_age": [41.0, None], "amount": [12.5, 3.0]})
    hashed = personal.frame(frame)
    expected = "hmac-sha256:" + hmac.new(personal.key, b"41.0", hashlib.sha256).hexdigest()
    assert hashed["customer_age"].tolist() == [expected, None]
    assert hashed["amount"].tolist() == [12.5, 3.0]  # not personal: as it was
    other_key = Pseudonymiser(personal.columns, b"another key")
    assert other_key.value(41.0) != expected  # without the key, a guess cannot be checked


def test_a_spec_without_personal_columns_needs_no_key(key_file):
    settings = load_settings()
    assert Pseudonymiser.for_spec(settings.dataset, settings.gate).columns == frozenset()
    assert not key_file.exists()


def test_the_key_file_is_in_the_state_dir_by_default(workdir):
    settings = load_settings()
    assert settings.gate.personal_data_key_file == settings.state_dir / "personal_data.key"
