"""Cluster-wide mutual exclusion through Prefect global concurrency limits (limit 1)."""

from contextlib import suppress


def global_lock(name: str, timeout_seconds: float = 300):
    """A context manager held by at most one process at a time, across every worker that
    talks to the same Prefect API; the limit is created on first use."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another process created it first
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    return concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_seconds)
