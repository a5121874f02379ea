import logging
import sys

from inferloop.core.errors import InferloopError
from inferloop.runtime.terminal_logs import hide_tracebacks_of_known_errors


def failed_run_record(error: Exception) -> logging.LogRecord:
    try:
        raise error
    except type(error):
        return logging.getLogger("prefect.task_runs").makeRecord(
            "prefect.task_runs",
            logging.ERROR,
            __file__,
            1,
            "Task run failed: %r",
            (error,),
            sys.exc_info(),
            extra={"task_run_name": "score-partition-1"},  # as Prefect's run logger adds
        )


def terminal_handler():
    from prefect.logging.handlers import PrefectConsoleHandler

    hide_tracebacks_of_known_errors()
    hide_tracebacks_of_known_errors()  # twice (each CLI command calls it): wraps once
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    return handler


def test_a_known_error_shows_its_message_without_traceback_and_keeps_it_for_the_api():
    record = failed_run_record(InferloopError("S3 endpoint gone: check it"))
    shown = terminal_handler().format(record)
    assert "S3 endpoint gone: check it" in shown and "Traceback" not in shown
    assert record.exc_info is not None  # the API handler still formats the traceback
    assert "Traceback" in logging.Formatter().format(record)


def test_an_unexpected_error_keeps_its_traceback():
    shown = terminal_handler().format(failed_run_record(KeyError("bug")))
    assert "Traceback" in shown and "KeyError" in shown
