import re

import pytest

from inferloop.core.settings import KNOBS, REPO_ROOT, SettingsError, load_settings, unknown_settings


def test_defaults_work_on_a_fresh_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("INFERLOOP_STATE_DIR", str(tmp_path / "state"))
    settings = load_settings()
    assert settings.lake.storage_uri == (tmp_path / "state" / "lake").as_uri()
    assert settings.registry.tracking_uri == f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"
    assert settings.registry.model_name == "transactions-classifier"
    assert settings.dataset.label.column == "is_fraud"


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("INFERLOOP_STORAGE_URI", "s3://bucket/prefix/")
    monkeypatch.setenv("INFERLOOP_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("INFERLOOP_CHAMPION_ALIAS", "prod")
    settings = load_settings()
    assert settings.lake.storage_uri == "s3://bucket/prefix"
    assert settings.registry.champion_alias == "prod"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INFERLOOP_STORAGE_URI", "ftp://somewhere"),
        ("INFERLOOP_MIN_ROC_AUC", "1.5"),
        ("INFERLOOP_DECISION_THRESHOLD", "not-a-number"),
        ("INFERLOOP_S3_ENDPOINT_URL", "127.0.0.1:9000"),
        ("INFERLOOP_TASK_RUNNER", "threads"),
        ("INFERLOOP_SCORE_BATCH_ROWS", "10"),
        ("INFERLOOP_S3_MAX_ATTEMPTS", "0"),
    ],
)
def test_a_bad_value_fails_fast_naming_the_knob(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_overrides_are_validated_too():
    with pytest.raises(SettingsError, match="INFERLOOP_HOLDOUT_DAYS"):
        load_settings(holdout_days=0)


@pytest.mark.parametrize(
    ("value", "every"),
    [("[7]", [7]), ("7", [7]), ("30,1,7", [1, 7, 30]), ("[1, 7, 30, 7]", [1, 7, 30]), ("[]", [])],
)
def test_replay_baselines_read_from_the_environment(monkeypatch, value, every):
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", value)
    assert load_settings().replay.baseline_every == every


@pytest.mark.parametrize(
    ("partition", "every"),
    [("hour", [1, 24, 168]), ("day", [1, 7, 30]), ("week", [1, 4, 13]), ("month", [1, 3, 12])],
)
def test_replay_baselines_default_to_the_crons_people_run_for_the_feeds_partition(
    monkeypatch, partition, every
):
    """Every 7 and 30 hours is no schedule anyone keeps; every 30 months outlasts most histories."""
    assert load_settings().replay.baselines_for(partition) == every
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", " ")  # passed through blank, e.g. by a compose file
    assert load_settings().replay.baselines_for(partition) == every
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", "2")
    assert load_settings().replay.baselines_for(partition) == [2]
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", "[]")
    assert load_settings().replay.baselines_for(partition) == []


@pytest.mark.parametrize("value", ["[0, 7]", "weekly", "-1"])
def test_a_baseline_of_less_than_one_partition_fails_naming_the_knob(monkeypatch, value):
    monkeypatch.setenv("INFERLOOP_BASELINE_EVERY", value)
    with pytest.raises(SettingsError, match="INFERLOOP_BASELINE_EVERY"):
        load_settings()


def test_the_readme_settings_table_names_every_knob_and_nothing_else():
    """Rows may share knobs (`INFERLOOP_CHAMPION_ALIAS` / `_CHALLENGER_ALIAS`)."""
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme[readme.index("| variable | default | meaning |") :].split("\n\n")[0]
    documented = {
        name.removeprefix("INFERLOOP_").lstrip("_").lower()
        for line in table.splitlines()[2:]
        for name in re.findall(r"`(INFERLOOP_[A-Z0-9_]+|_[A-Z0-9_]+)`", line.split("|")[1])
    }
    missing, unknown = sorted(set(KNOBS) - documented), sorted(documented - set(KNOBS))
    assert not missing, f"add to the README's Settings table: {missing}"
    assert not unknown, f"not settings, in the README's Settings table: {unknown}"


@pytest.mark.parametrize("value", ["htp:/x", "htp://127.0.0.1:5000", "http:/x", "https://", "ftp://host"])
def test_a_tracking_uri_mlflow_cannot_use_fails_at_load_naming_the_knob(monkeypatch, value):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", value)
    with pytest.raises(SettingsError, match="INFERLOOP_TRACKING_URI"):
        load_settings()


@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1:5000",
        "https://mlflow.example.org",
        "sqlite:///state/mlflow.db",
        "file:///tmp/mlruns",
        "postgresql+psycopg2://user@127.0.0.1:5432/mlflow",
        "databricks",
        "./mlruns",
        "/var/mlruns",
    ],
)
def test_tracking_uris_mlflow_accepts_load(monkeypatch, value):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", value)
    assert load_settings().registry.tracking_uri == value


def test_unknown_inferloop_variables_are_reported_with_the_closest_knob():
    environ = {
        "INFERLOOP_TRAIN_WINDOW_DAY": "3",  # INFERLOOP_TRAIN_WINDOW_DAYS misspelt
        "INFERLOOP_MIN_ROCAUC": "0.7",
        "INFERLOOP_WHATEVER": "1",
        "INFERLOOP_MIN_ROC_AUC": "0.7",  # a knob
        "INFERLOOP_PROJECT_DIR": "/opt/inferloop",  # read by prefect.yaml, not a knob
        "PATH": "/bin",
    }
    assert unknown_settings(environ) == [
        "INFERLOOP_MIN_ROCAUC is not an inferloop setting and is ignored: did you mean "
        "INFERLOOP_MIN_ROC_AUC?",
        "INFERLOOP_TRAIN_WINDOW_DAY is not an inferloop setting and is ignored: did you mean "
        "INFERLOOP_TRAIN_WINDOW_DAYS?",
        "INFERLOOP_WHATEVER is not an inferloop setting and is ignored (see the settings table in README.md)",
    ]
