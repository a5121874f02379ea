"""The loop's flows. Importing them is an entry point (a deployment's flow run, a Dask worker
unpickling a flow): the process is prepared first, before Prefect is imported."""

from inferloop.core.offline import prepare_process

prepare_process()
