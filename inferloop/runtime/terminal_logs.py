"""What a run shows in the terminal.

Prefect logs a failed task or flow run with the exception's traceback. An InferloopError's
message already says what went wrong and what to do, so the terminal shows that message alone;
the Prefect API (the run's logs in the UI) still records the full traceback.

The terminal is for people: without --verbose it shows what inferloop itself says (its flows'
prints, its own log lines) and every warning or error, not Prefect's run bookkeeping ("Beginning
flow run", "Finished in state"), its temporary server's banner or libraries' Python warnings.
Those still reach the run's logs in the Prefect API.
"""

import logging
import os
from pathlib import Path

import inferloop
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


class _ForPeople(logging.Filter):
    def __init__(self, own_dirs: tuple[str, ...], prefect_dir: str):
        super().__init__()
        self.own_dirs, self.prefect_dir = own_dirs, prefect_dir

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":  # a library's warning: for --verbose
            return False
        if record.exc_info and isinstance(record.exc_info[1], InferloopError):
            return False  # the command prints the message itself, once
        if record.pathname.startswith(self.prefect_dir) and str(record.msg).startswith("Finished in state"):
            return False  # a failed run's state: its error is printed where it is raised
        # A print in a flow is logged from the line that printed (inferloop's code); a library
        # that prints inside a run (tl2cgen's build log, say) is not inferloop speaking.
        return record.levelno >= logging.WARNING or record.pathname.startswith(self.own_dirs)


VERBOSE = "INFERLOOP_VERBOSE"  # `inferloop --verbose`, for this process and the ones it starts


def verbose_requested() -> bool:
    """`inferloop --verbose` was given to this process or the command that started it."""
    return os.environ.get(VERBOSE) == "1"


# The libraries' own chatter, for commands run without --verbose (set before they are imported).
QUIET_LIBRARIES = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def inferloop_dirs() -> tuple[str, ...]:
    """Where inferloop's own code is (flows and tasks may be links to the project's folders)."""
    package = Path(inferloop.__file__).parent
    return tuple({str(package), *(str((package / part).resolve()) for part in ("flows", "tasks"))})


def configure_terminal(verbose: bool) -> None:
    """Prefect's terminal handler prints InferloopErrors without their traceback and, unless
    `verbose`, only what is meant for people (see the module's docstring)."""
    if not verbose:
        for name, value in QUIET_LIBRARIES.items():
            os.environ.setdefault(name, value)
    import prefect.main  # sets up Prefect's logging, once per process
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if not isinstance(handler, PrefectConsoleHandler):
            continue
        formatter = handler.formatter
        if not isinstance(formatter, _KnownErrorsWithoutTraceback):
            handler.setFormatter(_KnownErrorsWithoutTraceback(formatter or logging.Formatter()))
        quiet = [f for f in handler.filters if isinstance(f, _ForPeople)]
        if verbose:
            for existing in quiet:
                handler.removeFilter(existing)
        elif not quiet:
            handler.addFilter(_ForPeople(inferloop_dirs(), str(Path(prefect.main.__file__).parent)))
