import logging
import sys
from pathlib import Path

import inferloop
from inferloop.core.errors import InferloopError
from inferloop.runtime.terminal_logs import configure_terminal


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


def terminal_handler(verbose: bool = True):
    from prefect.logging.handlers import PrefectConsoleHandler

    configure_terminal(verbose)
    configure_terminal(verbose)  # twice (each CLI command calls it): wraps once
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


def record_from(
    pathname: str, level: int = logging.INFO, name: str = "prefect.flow_runs"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, pathname, 1, "a line", (), None)


def test_without_verbose_the_terminal_shows_inferloops_lines_and_problems_not_prefects_bookkeeping():
    import prefect

    library = f"{prefect.__file__.rsplit('/', 1)[0]}/flow_engine.py"
    quiet = terminal_handler(verbose=False)
    try:
        assert not quiet.filter(record_from(library))  # "Beginning flow run ...", "Finished in state"
        flows = Path(inferloop.__file__).parent / "flows"
        assert quiet.filter(record_from(str(flows / "train.py")))  # a print in an inferloop flow
        assert quiet.filter(record_from(str(flows.resolve() / "train.py")))
        assert not quiet.filter(record_from("/lib/tl2cgen/libloader.py"))  # a library's print
        assert quiet.filter(record_from(library, logging.WARNING))  # Prefect's own warnings stay
        assert not quiet.filter(record_from("/lib/mlflow/types/utils.py", logging.WARNING, "py.warnings"))
        assert not quiet.filter(failed_run_record(InferloopError("printed once, by the command")))
        failed_state = record_from(library, logging.ERROR)
        failed_state.msg = "Finished in state Failed('Task run encountered an exception ...')"
        assert not quiet.filter(failed_state)  # the error itself is printed where it is raised
        assert quiet.filter(failed_run_record(KeyError("bug")))
    finally:
        verbose = terminal_handler(verbose=True)
    assert verbose.filter(record_from(library)) and verbose.filter(
        record_from("/lib/x.py", logging.WARNING, "py.warnings")
    )
