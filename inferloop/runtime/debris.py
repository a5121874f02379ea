"""What a command killed with kill -9 leaves behind, swept by the next command.

A killed command cannot stop its temporary Prefect API (a child process that keeps its port
and ~240 MB) nor remove its private GX project copy. Each command marks the processes it
starts with its pid (`INFERLOOP_OWNER_PID`, inherited through the environment) and each GX
copy with an owner file; the next command stops and removes those whose owner is gone.
"""

import os
import shutil
from pathlib import Path

from inferloop.core.owners import is_gone, pid_alive

OWNER_VARIABLE = "INFERLOOP_OWNER_PID"
OWNER_FILE = ".owner"  # in a GX project copy: "host pid"
TEMPORARY_API = "prefect.server.api.server:create_app"  # in the command line of Prefect's temporary API


def mark_children() -> None:
    """Processes this one starts from now on name it as their owner."""
    os.environ[OWNER_VARIABLE] = str(os.getpid())


def is_gone_mark(mark: str) -> bool:
    """True when `mark` (an owner_mark: "host pid") names a process of this host that is gone."""
    host, _, pid = mark.strip().rpartition(" ")
    return pid.isdigit() and is_gone(host, int(pid))


def sweep(gx_runtime_dir: Path) -> list[str]:
    """Stop orphaned temporary Prefect APIs and remove orphaned GX copies; what was swept."""
    return [*stop_orphaned_temporary_apis(), *remove_orphaned_gx_copies(gx_runtime_dir)]


def stop_orphaned_temporary_apis() -> list[str]:
    import psutil

    stopped = []
    for process in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            if process.info["uids"] is None or process.info["uids"].real != os.getuid():
                continue
            if TEMPORARY_API not in " ".join(process.info["cmdline"] or []):
                continue
            environment = process.environ()
            if environment.get("PREFECT__SERVER_EPHEMERAL") != "1":  # e.g. the stack's own server
                continue
            owner = environment.get(OWNER_VARIABLE, "")
            if owner.isdigit() and int(owner) != os.getpid() and not pid_alive(int(owner)):
                process.terminate()
                try:
                    process.wait(5)
                except psutil.TimeoutExpired:
                    process.kill()
                stopped.append(f"temporary Prefect API pid {process.pid} (its command {owner} was killed)")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return stopped


def remove_orphaned_gx_copies(gx_runtime_dir: Path) -> list[str]:
    removed = []
    for copy in sorted(gx_runtime_dir.glob("project-*")) if gx_runtime_dir.is_dir() else []:
        owner = copy / OWNER_FILE
        try:
            gone = is_gone_mark(owner.read_text())
        except OSError:  # being created right now, or removed by its owner meanwhile
            continue
        if gone:
            shutil.rmtree(copy, ignore_errors=True)
            removed.append(str(copy))
    return removed
