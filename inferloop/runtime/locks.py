"""Cluster-wide mutual exclusion through Prefect global concurrency limits (limit 1).

A holder killed inside the lock (kill -9, a lost pod) cannot release its slot. With the
stack's Prefect server its lease expires after `LEASE_SECONDS` and Prefect's repossessor frees
the slot; a command's temporary Prefect server runs no repossessor and its leases die with it,
so the slot would stay taken for good. So each holder also records who it is (host, pid,
since, command) in a Prefect variable: a waiter that finds that process gone on its own host
frees the slot at once, and one that gives up names the holder and how to free the lock.
A holder killed between taking the slot and recording itself leaves a taken slot with no
record: a slot that stays so for `UNRECORDED_GRACE_SECONDS` (recording takes one API call) is
freed too. Its record is cleared only after the slot is given back, and only if it is still
its own, so a kill between the two leaves a record of a dead process, not an untraceable slot.
"""

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from inferloop.core.errors import InferloopError

LEASE_SECONDS = 60  # renewed by Prefect while held; how long a dead holder keeps the stack's slot
POLL_SECONDS = 5  # how often a waiter looks at the holder again
UNRECORDED_GRACE_SECONDS = 60  # a taken slot nobody recorded for this long: its holder died


class LockHeldError(InferloopError):
    """The lock stayed taken by a live (or unknown) holder for the whole wait."""


def holder_variable(name: str) -> str:
    return f"{name}-holder"


@contextmanager
def global_lock(name: str, timeout_seconds: float = 300) -> Iterator[None]:
    """Held by at most one process at a time, across every worker that talks to the same
    Prefect API; the limit is created on first use. A holder found dead on this host loses
    the lock to the waiter; after `timeout_seconds` a LockHeldError names the holder."""
    from prefect.concurrency._asyncio import AcquireConcurrencySlotTimeoutError
    from prefect.concurrency.sync import concurrency

    deadline = time.monotonic() + timeout_seconds
    unrecorded_since = None  # when this waiter first saw the slot taken with no holder recorded
    while True:
        if _free_slots(name) > 0:
            acquired, mine = False, None
            try:
                with concurrency(
                    name,
                    occupy=1,
                    strict=True,
                    timeout_seconds=max(1.0, deadline - time.monotonic()),
                    lease_duration=LEASE_SECONDS,
                ):
                    acquired = True
                    mine = _set_holder(name)
                    yield
                return
            except AcquireConcurrencySlotTimeoutError:
                if acquired:  # raised by something inside the lock, not by this wait
                    raise
            finally:
                if mine is not None:
                    _clear_holder(name, mine)
        holder = _read_holder(name)
        if holder is not None and _is_dead_here(holder):
            free_lock(name)
            continue
        if holder is None:
            unrecorded_since = unrecorded_since or time.monotonic()
            if time.monotonic() - unrecorded_since >= UNRECORDED_GRACE_SECONDS:
                free_lock(name)
                unrecorded_since = None
                continue
        else:
            unrecorded_since = None
        if time.monotonic() >= deadline:
            raise LockHeldError(_held_message(name, holder, timeout_seconds))
        # Waiting here rather than inside Prefect's acquisition lets a dead holder be seen.
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def free_lock(name: str) -> None:
    """Give back the lock's slot and forget its holder (`inferloop unlock`): for a holder
    that is gone and cannot give it back itself."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise InferloopError(
                f"There is no lock named '{name}': copy the name from the error that reported it "
                f"(e.g. inferloop-promotion, inferloop-retrain)"
            ) from None
        client.release_concurrency_slots(names=[name], slots=1, occupancy_seconds=1.0)
    _clear_holder(name)


def lock_holder(name: str) -> dict | None:
    """Who holds the lock (host, pid, since, command), or None when nobody recorded it."""
    return _read_holder(name)


def _free_slots(name: str) -> int:
    """Slots of the limit not taken now; the limit is created (one slot) on first use."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another process created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            return 1
    return limit.limit - limit.active_slots


def _set_holder(name: str) -> dict:
    from prefect.variables import Variable

    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:200],
    }
    Variable.set(holder_variable(name), holder, overwrite=True)
    return holder


def _read_holder(name: str) -> dict | None:
    from prefect.variables import Variable

    holder = Variable.get(holder_variable(name), default=None)
    return holder if isinstance(holder, dict) else None


def _clear_holder(name: str, only: dict | None = None) -> None:
    """Forget the holder; with `only`, just that holder (the next one may have recorded itself)."""
    from prefect.variables import Variable

    if only is not None and _read_holder(name) != only:
        return
    with suppress(ValueError):  # already gone
        Variable.unset(holder_variable(name))


def _is_dead_here(holder: dict) -> bool:
    """The holder ran on this host and its process is gone (another host's cannot be checked)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _held_message(name: str, holder: dict | None, waited: float) -> str:
    who = (
        f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
        f"({holder.get('command')})"
        if holder
        else "a holder that did not record itself"
    )
    return (
        f"The lock '{name}' is still held after {waited:.0f} s, by {who}: wait for it to finish; "
        f"if that process is gone, run `inferloop unlock {name}` and retry"
    )
