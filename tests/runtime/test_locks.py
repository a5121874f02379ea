"""The cluster-wide lock against a real Prefect server: a holder killed inside it (kill -9)
does not keep it; a live holder is named when a waiter gives up."""

import os
import signal
import subprocess
import sys
import uuid

import pytest

from inferloop.runtime.locks import LockHeldError, free_lock, global_lock, lock_holder

HOLD = """
import sys, time
from inferloop.runtime.locks import global_lock
with global_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def lock_name(prefect_harness) -> str:
    return f"test-lock-{uuid.uuid4().hex[:8]}"


def start_holder(name: str) -> subprocess.Popen:
    """Another process that takes the lock and keeps it until killed."""
    from prefect.settings import PREFECT_API_URL

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, name],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_holder_killed_inside_the_lock_does_not_keep_it(lock_name):
    holder = start_holder(lock_name)
    assert lock_holder(lock_name)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # Its lease would keep the slot for a minute (for good on a temporary server): the
    # waiter sees the holder's process is gone and takes the lock well before that.
    with global_lock(lock_name, timeout_seconds=30):
        assert lock_holder(lock_name)["pid"] == os.getpid()
    assert lock_holder(lock_name) is None


def test_a_slot_taken_by_a_holder_killed_before_it_recorded_itself_is_freed(lock_name, monkeypatch):
    from prefect import get_client

    from inferloop.runtime import locks

    holder = start_holder(lock_name)
    holder.kill()
    holder.wait()
    # As if killed between taking the slot and recording itself: a taken slot, no record.
    locks._clear_holder(lock_name)
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(lock_name).active_slots == 1
    monkeypatch.setattr(locks, "UNRECORDED_GRACE_SECONDS", 2)
    monkeypatch.setattr(locks, "POLL_SECONDS", 0.5)
    with global_lock(lock_name, timeout_seconds=30):
        assert lock_holder(lock_name)["pid"] == os.getpid()
    assert lock_holder(lock_name) is None


def test_a_holder_clears_only_its_own_record(lock_name):
    from prefect.variables import Variable

    from inferloop.runtime import locks

    mine = locks._set_holder(lock_name)
    theirs = {**mine, "pid": mine["pid"] + 1}  # the next holder recorded itself meanwhile
    Variable.set(locks.holder_variable(lock_name), theirs, overwrite=True)
    locks._clear_holder(lock_name, mine)
    assert lock_holder(lock_name) == theirs
    locks._clear_holder(lock_name, theirs)
    assert lock_holder(lock_name) is None


def test_a_waiter_that_gives_up_names_the_live_holder_and_how_to_free_the_lock(lock_name):
    holder = start_holder(lock_name)
    try:
        with pytest.raises(LockHeldError) as held, global_lock(lock_name, timeout_seconds=1):
            pass
        message = str(held.value)
        assert f"pid {holder.pid}" in message and f"inferloop unlock {lock_name}" in message
    finally:
        holder.kill()
        holder.wait()


def test_unlock_frees_a_lock_whose_holder_cannot_be_checked(lock_name):
    holder = start_holder(lock_name)
    holder.kill()
    holder.wait()
    from prefect.variables import Variable

    # As if it had run on another host: its process cannot be looked at from here.
    Variable.set(f"{lock_name}-holder", {**lock_holder(lock_name), "host": "elsewhere"}, overwrite=True)
    with pytest.raises(LockHeldError, match="on elsewhere"), global_lock(lock_name, timeout_seconds=1):
        pass
    free_lock(lock_name)
    with global_lock(lock_name, timeout_seconds=5):
        pass


def test_inferloop_unlock_frees_a_lock_and_refuses_an_unknown_name_in_one_line(lock_name, workdir):
    from typer.testing import CliRunner

    from inferloop.cli.commands import app

    holder = start_holder(lock_name)
    holder.kill()
    holder.wait()
    freed = CliRunner().invoke(app, ["unlock", lock_name])
    assert freed.exit_code == 0, freed.output
    assert f"Freed the lock '{lock_name}' (held by pid {holder.pid}" in freed.output
    with global_lock(lock_name, timeout_seconds=5):
        pass

    unknown = CliRunner().invoke(app, ["unlock", "no-such-lock"])
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    assert unknown.output.strip() == (
        "error: There is no lock named 'no-such-lock': copy the name from the error that "
        "reported it (e.g. inferloop-promotion, inferloop-retrain)"
    )
