"""kill -9 of a CLI command while its temporary Prefect API runs and its GX copy exists: the
next command stops the one and removes the other (nothing keeps listening, nothing stays)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from inferloop.runtime.debris import TEMPORARY_API

pytestmark = pytest.mark.slow
INFERLOOP = str(Path(sys.executable).parent / "inferloop")


def temporary_apis(owner: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(owner).children(recursive=True)
        if TEMPORARY_API in " ".join(child.cmdline())
    ]


def test_the_next_command_sweeps_what_a_killed_one_left(workdir):
    state = workdir / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "INFERLOOP_STATE_DIR": str(state),
        "INFERLOOP_GX_RUNTIME_DIR": str(state / "gx"),  # this process's own is set once GX ran here
        "PREFECT_HOME": str(state / "prefect"),
    }
    generate = [INFERLOOP, "data", "generate", "--days", "1", "--rows-per-day", "500"]
    subprocess.run(generate, env=env, check=True, capture_output=True)
    day = next((workdir / "lake" / "transactions").glob("date=*")).name.removeprefix("date=")
    command = subprocess.Popen([INFERLOOP, "validate", "--date", day], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180  # the temporary API's cold start, on a loaded machine
    gx = state / "gx"
    while not (temporary_apis(command.pid) and list(gx.glob("project-*"))):
        assert command.poll() is None and time.monotonic() < deadline, "no temporary API seen"
        time.sleep(0.2)
    (orphan,) = temporary_apis(command.pid)
    command.send_signal(signal.SIGKILL)
    command.wait()
    assert orphan.is_running()  # left behind, holding its port

    subprocess.run(generate, env=env, check=True, capture_output=True)  # the next command
    orphan.wait(15)
    assert not orphan.is_running()
    assert not list(gx.glob("project-*"))
