"""Model versions load in a helper process, so that a swap under load does not stall requests.

Loading a version is Python from end to end (MLflow's downloads, skops rebuilding the pipeline):
~70 ms on a quiet machine, 190-360 ms under 32 clients, all of it holding the interpreter lock the
request threads need. Measured with `benchmarks/serving.py`: the p99 of requests within 3 s of an
alias move was ~100 ms against ~60 ms for the others. In the helper the endpoint pays only the
unpickling of the loaded model (1.3-2 ms, measured). The helper starts with the first load, which
runs here (nothing is served yet) while the helper imports its libraries, and runs at a lower CPU
priority than the endpoint; if it dies, the load runs here and a new helper starts.
"""

import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from inferloop.core.offline import prepare_process
from inferloop.core.registry import ModelVersionRef, Registry
from inferloop.tasks.model.optimised_artifact import scoring_model

log = logging.getLogger("inferloop.serve")

HELPER_NICENESS = 10  # below the endpoint: a load may take longer, requests must not

_registry: Registry | None = None  # the helper process's own client of the registry


def _start_helper(tracking_uri: str, model_name: str) -> None:
    global _registry
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the endpoint, which ends the helper
    prepare_process()
    import mlflow.sklearn  # noqa: F401  (imported at full priority while the endpoint starts)

    _registry = Registry(tracking_uri, model_name)
    os.nice(HELPER_NICENESS)


def _load_in_helper(ref: ModelVersionRef) -> object:
    return scoring_model(_registry, ref)


def _warm_helper(ref: ModelVersionRef) -> None:
    """Load a version and drop it: the libraries a load imports on first use are in before the
    first swap (at low priority under load, they took the first swap 7-10 s)."""
    scoring_model(_registry, ref)


class ModelLoader:
    """`loader(ref)`: what scores with the version (see `scoring_model`), loaded in the helper
    process once one has started; raises what `scoring_model` raises."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._helper: ProcessPoolExecutor | None = None
        self._in_process_only = False  # no helper could start here: every load runs in this process
        self._closed = False

    def __call__(self, ref: ModelVersionRef) -> object:
        if self._helper is None:
            if not (self._in_process_only or self._closed):
                self._start(ref)
            return scoring_model(self.registry, ref)
        try:
            return self._helper.submit(_load_in_helper, ref).result()
        except BrokenProcessPool:
            log.warning("the model loading process ended; loading %s v%s here", ref.name, ref.version)
            self._helper = None
            return self(ref)

    def _start(self, warm_with: ModelVersionRef) -> None:
        try:
            self._helper = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_helper,
                initargs=(self.registry.tracking_uri, self.registry.model_name),
            )
            self._helper.submit(_warm_helper, warm_with)
        except OSError as error:  # no semaphores or processes here (a sandbox): load in place
            log.warning("no model loading process (%s): new versions load in the endpoint's process", error)
            self._helper, self._in_process_only = None, True

    def close(self) -> None:
        """End the helper now, even in the middle of a load (the endpoint is stopping)."""
        self._closed = True
        helper, self._helper = self._helper, None
        if helper is not None:
            for process in list(helper._processes.values()):  # no public handle on the workers
                process.terminate()
            helper.shutdown(wait=True, cancel_futures=True)
