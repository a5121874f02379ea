"""Process-wide defaults: Prefect, MLflow, GX and AWS clients stay offline and local, and
memory stays bounded when tasks run in worker threads."""

import contextlib
import ctypes
import os
import tempfile
from pathlib import Path

from inferloop.core.errors import InferloopError

M_ARENA_MAX = -8  # glibc mallopt parameter

# Values a user sets explicitly win: these are defaults, applied with setdefault.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",  # MLflow honours only the literal "true"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    # A cold ephemeral Prefect API takes ~18 s on 2 cores; the default 20 s timeout is too tight.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # SQLite's busy wait: at 10 s (Prefect's default) a replay on a loaded 2-core machine had the
    # temporary API's event recorder print "database is locked" tracebacks; Prefect's tests use 30.
    "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
    # Without credentials, AWS SDKs probe the EC2 metadata endpoint, which hangs offline.
    "AWS_EC2_METADATA_DISABLED": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    # MLflow's default retries back off for minutes when the server is down; fail within ~10 s.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own malloc arena and rarely returns freed memory from them:
    scoring in a Prefect worker thread kept ~100 bytes per scored row (RSS 627 MB at 1M rows,
    942 MB at 4M). With two arenas it is flat (345 MB at both). Applied before threads start;
    a no-op where libc is not glibc. MALLOC_ARENA_MAX set by the user wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # for the processes this one starts
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)


def prepare_process() -> None:
    """What every inferloop entry point does first, before Prefect, MLflow or GX are imported
    (nothing may phone home or hang offline) and before any thread starts (worker threads must
    not each grow a malloc arena)."""
    apply_offline_defaults()
    limit_malloc_arenas()


def apply_offline_defaults() -> None:
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    # Keep Prefect's local database and profiles inside the project's state dir, not ~/.prefect.
    state_dir = Path(os.environ.get("INFERLOOP_STATE_DIR", ".inferloop")).absolute()
    os.environ.setdefault("PREFECT_HOME", str(state_dir / "prefect"))
    # Before anything can print a message: an unusable state dir is reported by
    # `check_state_dir`, which entry points call once they can.
    with contextlib.suppress(OSError):
        Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


class StateDirError(InferloopError, OSError):
    """The state dir cannot be created or written."""


def check_state_dir() -> Path:
    """The state dir (INFERLOOP_STATE_DIR), created and writable, and Prefect's home in it;
    a StateDirError naming the variable when it cannot be."""
    given = os.environ.get("INFERLOOP_STATE_DIR", ".inferloop")
    state_dir = Path(given).expanduser().absolute()
    try:
        Path(os.environ.get("PREFECT_HOME", state_dir / "prefect")).mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=state_dir):
            pass
    except OSError as error:
        raise StateDirError(
            f"The state dir {state_dir} cannot be used ({error.strerror or error}): point "
            "INFERLOOP_STATE_DIR at a folder you can write to"
        ) from error
    return state_dir
