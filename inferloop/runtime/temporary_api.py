"""Prefect's temporary API, booted while a command imports instead of after.

On embedded defaults (no PREFECT_API_URL) a command's first flow starts Prefect's temporary API,
a server process that boots for seconds (3.7 s here, once its database exists), and waits for
it. A scoring command spends seconds importing Prefect, MLflow and the scoring stack first; on
two cores the two overlap. Prefect's own `start()` marks the server running before it answers, so nothing
may ask for the API before `ready()` has joined the thread that starts it.
"""

import contextlib
import threading

from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED


class EarlyTemporaryApi:
    """Starts the process's temporary Prefect API in a thread at once (where no API is named)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            return
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the instance the flows' client uses (no port given)
        self._thread = threading.Thread(target=self._start, args=(server,), name="temporary-prefect-api")
        self._thread.start()

    @staticmethod
    def _start(server) -> None:
        # A failure is left to the first flow, whose own start raises it with Prefect's message.
        with contextlib.suppress(Exception):
            server.start()

    def ready(self) -> None:
        """Wait until the API answers (or its start failed): flows may run from here."""
        if self._thread is not None:
            self._thread.join()
