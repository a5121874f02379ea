import pytest

from inferloop.core.registry import RegistryError
from inferloop.core.settings import load_settings
from inferloop.tasks.model.registry import resolve_alias

pytestmark = pytest.mark.slow


def test_unknown_alias_says_how_to_get_one(mlflow_server, monkeypatch):
    monkeypatch.setenv("INFERLOOP_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("INFERLOOP_MODEL_NAME", "never-registered")
    with pytest.raises(RegistryError, match="No version of never-registered has the alias @champion"):
        resolve_alias.fn(load_settings().registry, "champion")


def test_registry_down_is_a_clear_error(monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("INFERLOOP_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match=r"unreachable.*make up"):
        resolve_alias.fn(load_settings().registry, "champion")
