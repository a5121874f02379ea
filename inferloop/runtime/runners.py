"""Which Prefect task runner flows use: threads (the embedded default) or a Dask cluster."""

from inferloop.core.settings import Settings


def configured_task_runner(settings: Settings):
    """`thread`: Prefect's thread pool in this process. `dask`: a DaskTaskRunner on
    `dask_address` (an existing `dask scheduler`) or, without one, a local cluster of 2 worker
    processes with 1 thread each (the model already uses every core it is given). Either way its
    workers report to the flow's Prefect API (inferloop.runtime.dask_runner)."""
    if settings.runner.task_runner == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from inferloop.runtime.dask_runner import FlowApiDaskTaskRunner  # imports dask: only when asked for

    if settings.runner.dask_address:
        return FlowApiDaskTaskRunner(address=settings.runner.dask_address)
    return FlowApiDaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
