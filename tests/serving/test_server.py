"""Starting the endpoint: a port another process holds is one clear line, before any model loads;
uvicorn logs a line per request only with `inferloop --verbose serve`."""

import socket

import pytest

from inferloop.core.errors import InferloopError
from inferloop.core.settings import load_settings
from inferloop.runtime.terminal_logs import VERBOSE
from inferloop.serving.server import check_port_free, serve
from tests.conftest import free_port


def test_a_port_in_use_is_refused_naming_the_option_that_moves_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(InferloopError, match=rf"127.0.0.1:{port} .*pass --port \(INFERLOOP_SERVE_PORT\)"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again: no error


def test_the_access_log_is_on_only_with_verbose(monkeypatch, tmp_path):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(options))
    monkeypatch.setattr("inferloop.serving.server._log_to_stderr", lambda: None)  # the process's logging
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # serve sets it; restored after
    monkeypatch.delenv(VERBOSE, raising=False)
    settings = load_settings(state_dir=tmp_path, serve_port=free_port())
    serve(settings)
    monkeypatch.setenv(VERBOSE, "1")
    serve(settings)
    assert [options["access_log"] for options in started] == [False, True]
