"""Model versions load in a helper process, so that a swap under load does not stall requests.

Loading a version is Python from end to end (MLflow's downloads, skops rebuilding the pipeline
of a version without a usable compiled library; the figures are from before compiled versions
stopped loading it):
~70 ms on a quiet machine, 190-360 ms under 32 clients, all of it holding the interpreter lock the
request threads need. Measured with `benchmarks/serving.py`: the p99 of requests within 3 s of an
alias move was ~100 ms against ~60 ms for the others. In the helper the endpoint pays only the
unpickling of the loaded model (1.3-2 ms, measured). The first version loads here (nothing is
served yet); the helper starts at the first swap (an endpoint that never swaps never pays for a
second process with MLflow and scikit-learn imported), imports and loads that version at
normal priority, then lowers its CPU priority below the endpoint's for the loads after it (at low
priority from the start, its imports under load took 7-10 s). If it dies, the load runs here and
the next swap starts a new helper.
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
    _registry = Registry(tracking_uri, model_name)


def _load_in_helper(ref: ModelVersionRef) -> object:
    model = scoring_model(_registry, ref)
    if os.getpriority(os.PRIO_PROCESS, 0) < HELPER_NICENESS:  # once, after the first load's imports
        os.setpriority(os.PRIO_PROCESS, 0, HELPER_NICENESS)
    return model


class ModelLoader:
    """`loader(ref)`: what scores with the version (see `scoring_model`), loaded in the helper
    process once one has started; raises what `scoring_model` raises."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._helper: ProcessPoolExecutor | None = None
        self._loaded_once = False
        self._in_place_only = False  # closed, or no helper can start here: every load runs here

    def __call__(self, ref: ModelVersionRef) -> object:
        if not self._loaded_once or self._in_place_only:
            self._loaded_once = True
            return scoring_model(self.registry, ref)
        if self._helper is None:
            self._start()
        if self._helper is None:  # none could start
            return scoring_model(self.registry, ref)
        try:
            return self._helper.submit(_load_in_helper, ref).result()
        except BrokenProcessPool:
            # Also what a compiled model whose library does not load in this process looks like:
            # it fails as its result is unpickled here, which breaks the pool.
            log.warning(
                "the model loading process ended, or what it loaded does not load here; loading %s v%s here",
                ref.name,
                ref.version,
            )
            self._helper = None
            return scoring_model(self.registry, ref)

    def _start(self) -> None:
        try:
            self._helper = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_helper,
                initargs=(self.registry.tracking_uri, self.registry.model_name),
            )
        except OSError as error:  # no semaphores or processes here (a sandbox): load in place
            log.warning("no model loading process (%s): new versions load in the endpoint's process", error)
            self._helper, self._in_place_only = None, True

    def close(self) -> None:
        """End the helper now, even in the middle of a load (the endpoint is stopping)."""
        self._in_place_only = True
        helper, self._helper = self._helper, None
        if helper is not None:
            for process in list(helper._processes.values()):  # no public handle on the workers
                process.terminate()
            helper.shutdown(wait=True, cancel_futures=True)
