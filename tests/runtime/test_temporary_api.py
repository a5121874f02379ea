"""Prefect's temporary API booted early: only on embedded defaults, and nothing may use it before
`ready()` has seen its start through (Prefect marks the server running before it answers).
A narrow unit test with a stand-in server; tests/e2e run `inferloop infer` on embedded defaults."""

import threading
import time
from typing import ClassVar

import prefect.server.api.server
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from inferloop.runtime.temporary_api import EarlyTemporaryApi


class SlowServer:
    """Stands in for SubprocessASGIServer: boots for a while, or fails."""

    made: ClassVar[list["SlowServer"]] = []

    def __init__(self, fails: bool = False):
        self.answering, self.fails = False, fails
        self.thread = None
        SlowServer.made.append(self)

    def start(self):
        self.thread = threading.current_thread()
        time.sleep(0.3)
        if self.fails:
            raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")
        self.answering = True


@pytest.fixture
def stand_in(monkeypatch):
    SlowServer.made.clear()
    monkeypatch.setattr(prefect.server.api.server, "SubprocessASGIServer", SlowServer)
    return SlowServer.made


def test_on_embedded_defaults_the_api_boots_in_a_thread_and_ready_waits_for_it(stand_in):
    with temporary_settings({PREFECT_API_URL: None}):
        api = EarlyTemporaryApi()
        api.ready()
    (server,) = stand_in
    assert server.answering and server.thread is not threading.main_thread()


def test_with_an_api_named_nothing_is_started(stand_in):
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        api = EarlyTemporaryApi()
        api.ready()
    assert stand_in == []


def test_a_start_that_fails_is_left_to_the_first_flow(stand_in, monkeypatch):
    monkeypatch.setattr(prefect.server.api.server, "SubprocessASGIServer", lambda: SlowServer(fails=True))
    with temporary_settings({PREFECT_API_URL: None}):
        api = EarlyTemporaryApi()
        api.ready()  # does not raise: the flow's own start reports it, with Prefect's message
    assert not stand_in[0].answering
