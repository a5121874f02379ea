"""What a command killed with kill -9 leaves is swept by the next one, and only that: real
processes, real directories, a real lake directory."""

import os
import socket
import subprocess
import sys

import pyarrow as pa

from inferloop.core.owners import owner_mark
from inferloop.core.storage import Storage
from inferloop.runtime.debris import OWNER_FILE, OWNER_VARIABLE, TEMPORARY_API, sweep


def dead_pid() -> int:
    """The pid of a process that has exited."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_a_temporary_api_whose_command_was_killed_is_stopped_and_no_other(tmp_path):
    # Processes that look like Prefect's temporary API (its app in their command line).
    def api(owner: int, temporary: bool = True) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)", TEMPORARY_API],
            env={**os.environ, OWNER_VARIABLE: str(owner), "PREFECT__SERVER_EPHEMERAL": str(int(temporary))},
        )

    orphan, owned, stack = api(dead_pid()), api(os.getpid()), api(dead_pid(), temporary=False)
    try:
        swept = sweep(tmp_path / "gx")
        assert orphan.wait(10) is not None
        assert owned.poll() is None
        assert stack.poll() is None  # a `prefect server start` (the stack's) is never swept
        assert any(str(orphan.pid) in line for line in swept)
    finally:
        for process in (orphan, owned, stack):
            process.kill()
            process.wait()


def test_gx_copies_of_killed_commands_are_removed_and_others_kept(tmp_path):
    gx = tmp_path / "gx"
    copies = {name: gx / f"project-{name}" for name in ("killed", "running", "elsewhere")}
    marks = {
        "killed": f"{socket.gethostname()} {dead_pid()}",
        "running": owner_mark(),
        "elsewhere": f"another-host {dead_pid()}",
    }
    for name, copy in copies.items():
        copy.mkdir(parents=True)
        (copy / OWNER_FILE).write_text(marks[name])
    sweep(gx)
    assert sorted(p.name for p in gx.iterdir()) == ["project-elsewhere", "project-running"]


def test_a_writer_removes_the_temp_files_killed_writers_left_for_the_same_file(tmp_path):
    storage = Storage(tmp_path.as_uri())
    directory = tmp_path / "predictions" / "date=2026-01-01"
    directory.mkdir(parents=True)
    host = socket.gethostname()
    killed = directory / f".part-0.parquet.0123456789ab.{dead_pid()}@{host}.tmp"
    running = directory / f".part-0.parquet.0123456789ac.{os.getpid()}@{host}.tmp"
    other_file = directory / f".part-1.parquet.0123456789ad.{dead_pid()}@{host}.tmp"
    for leftover in (killed, running, other_file):
        leftover.write_bytes(b"half a parquet file")
    storage.write_table("predictions/date=2026-01-01/part-0.parquet", pa.table({"x": [1, 2]}))
    assert not killed.exists() and running.exists() and other_file.exists()
    assert storage.read_table("predictions/date=2026-01-01").num_rows == 2
