"""Finding the PostgreSQL server: a missing one is a clear error saying how to install it."""

import pytest

from inferloop.core.settings import load_settings
from inferloop.stack import postgres
from inferloop.stack.processes import service_stages


def test_missing_server_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(postgres, "DEBIAN_SERVER_DIRS", tmp_path)
    with pytest.raises(postgres.PostgresError, match="apt-get install postgresql"):
        postgres.server_bin_dir()


def test_newest_major_version_wins_and_the_server_listens_on_tcp_only(tmp_path, monkeypatch):
    for major in ("9", "15", "13"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").touch()
    monkeypatch.setattr(postgres, "DEBIAN_SERVER_DIRS", tmp_path)
    assert postgres.server_bin_dir() == tmp_path / "15" / "bin"
    settings = load_settings(stack_profile="prod", postgres_port=5999, state_dir=tmp_path / "state")
    (server,) = [p for stage in service_stages(settings) for p in stage if p.name == "postgres"]
    command = server.command
    assert command[0] == str(tmp_path / "15" / "bin" / "postgres")
    assert command[command.index("-D") + 1] == str(postgres.data_dir(settings))
    assert command[command.index("-h") + 1] == "127.0.0.1"
    assert command[command.index("-p") + 1] == "5999"
    assert command[command.index("-k") + 1] == ""  # no Unix socket


def test_database_urls_carry_no_password():
    settings = load_settings(postgres_port=5999)
    assert postgres.database_url(settings, "mlflow") == "postgresql://inferloop@127.0.0.1:5999/mlflow"
    url = postgres.database_url(settings, "prefect", "postgresql+asyncpg")
    assert url == "postgresql+asyncpg://inferloop@127.0.0.1:5999/prefect"
