"""Which Prefect task runner flows use: threads (the embedded default) or a Dask cluster."""

from inferloop.settings import Settings


def configured_task_runner(settings: Settings):
    """`thread`: Prefect's thread pool in this process. `dask`: prefect-dask's DaskTaskRunner on
    `dask_address` (an existing `dask scheduler`) or, without one, a local cluster of 2 worker
    processes with 1 thread each (the model already uses every core it is given)."""
    if settings.task_runner == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
