"""Which process (host and pid) made something, and whether it is gone: what is left by a
process killed with kill -9 can be swept by the next one, and only that."""

import os
import socket
from pathlib import Path


def owner_mark() -> str:
    """This process, as "host pid"."""
    return f"{socket.gethostname()} {os.getpid()}"


def is_gone(host: str, pid: int) -> bool:
    """True when `pid` names a process of this host that no longer runs (another host's
    processes cannot be checked: they are never taken for gone)."""
    return host == socket.gethostname() and not pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. A zombie (exited, not yet reaped by its parent) is not alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True  # no /proc (not Linux): signal 0 is all we know
    return state != "Z"
