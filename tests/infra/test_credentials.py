"""Production-profile credentials: the environment wins, else generated once and kept private."""

import stat

from inferloop.core.settings import load_settings
from inferloop.stack.credentials import credentials_file, stack_credentials

NAMES = (
    "PGPASSWORD",
    "PREFECT_API_AUTH_STRING",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_READER_PASSWORD",
)


def _settings(tmp_path, monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return load_settings(state_dir=tmp_path / "state")


def test_generated_once_kept_owner_only_and_reused(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    first = stack_credentials(settings)
    path = credentials_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stack_credentials(settings) == first
    # Long enough for MLflow's basic auth (>= 12 characters) and distinct from each other.
    assert all(len(secret) >= 24 for secret in first.secret_values())
    assert len(set(first.secret_values())) == len(first.secret_values())
    assert first.PREFECT_API_AUTH_STRING.startswith("inferloop:")


def test_environment_wins_and_clients_never_get_server_secrets(tmp_path, monkeypatch):
    settings = _settings(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-the-environment-1234")
    credentials = stack_credentials(settings)
    assert credentials.MLFLOW_TRACKING_PASSWORD == "from-the-environment-1234"
    assert "from-the-environment-1234" in credentials_file(settings).read_text()
    client = credentials.client_env()
    assert credentials.PGPASSWORD not in client.values()
    assert credentials.MLFLOW_FLASK_SERVER_SECRET_KEY not in client.values()
    # MLflow's admin and the read-only person's account are nobody's client credentials.
    assert credentials.MLFLOW_AUTH_ADMIN_PASSWORD not in client.values()
    assert credentials.MLFLOW_READER_PASSWORD not in client.values()
    assert client["MLFLOW_TRACKING_PASSWORD"] == "from-the-environment-1234"
