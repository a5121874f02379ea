"""prefect-dask's task runner, with Dask workers that report to the flow's own Prefect API."""

from distributed.diagnostics.plugin import WorkerPlugin
from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings
from prefect_dask import DaskTaskRunner


class TerminalForPeople(WorkerPlugin):
    """The workers of a local cluster write to the command's terminal: each keeps its console
    to what the command itself shows (`inferloop.runtime.terminal_logs`; `--verbose` reaches
    them through the inherited environment). Without it every task printed Prefect's
    "Finished in state Completed()"; the Prefect API still gets every record."""

    name = "inferloop-terminal"

    def setup(self, worker) -> None:
        from inferloop.runtime.terminal_logs import configure_terminal, verbose_requested

        configure_terminal(verbose=verbose_requested())


class FlowApiDaskTaskRunner(DaskTaskRunner):
    """A DaskTaskRunner whose tasks carry the flow's Prefect API address.

    Each task ships the flow's Prefect settings to its worker. On embedded defaults (no
    PREFECT_API_URL) those settings name no API, so every worker process started a temporary
    Prefect server of its own on its first task (4-13 s, and 3 server processes per run of a
    2-worker local cluster). The runner is entered inside the flow run, after the flow's client
    started the process's temporary server: from then on the settings the tasks carry name it.
    That server listens on 127.0.0.1, so workers on other hosts need a real one (`inferloop up`).
    """

    def __enter__(self):
        super().__enter__()
        if not PREFECT_API_URL.value() and PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            server = SubprocessASGIServer()  # the process's one temporary server (port chosen once)
            server.start()  # a no-op: the flow run's client already started it
            self._exit_stack.enter_context(temporary_settings({PREFECT_API_URL: server.api_url}))
        if not self.address:  # a cluster of this command's own: a scheduler's workers log elsewhere
            self.client.register_plugin(TerminalForPeople())
        return self
