"""What a failed run shows in the terminal.

Prefect logs a failed task or flow run with the exception's traceback. An InferloopError's
message already says what went wrong and what to do, so the terminal shows that message alone;
the Prefect API (the run's logs in the UI) still records the full traceback.
"""

import logging

from inferloop.core.errors import InferloopError


class _KnownErrorsWithoutTraceback(logging.Formatter):
    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], InferloopError):
            # A copy: the other handlers (the API's) still get the traceback.
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)


def hide_tracebacks_of_known_errors() -> None:
    """Make Prefect's terminal handler print InferloopErrors without their traceback."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging, once per process)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(handler, PrefectConsoleHandler) and not isinstance(
            formatter, _KnownErrorsWithoutTraceback
        ):
            handler.setFormatter(_KnownErrorsWithoutTraceback(formatter or logging.Formatter()))
