"""GX's own validation of a partition's sample: in this process, or in a helper process.

Importing GX costs about 2 s of CPU (its modules, scipy, SQLAlchemy, Altair), a third of what a
one-partition `inferloop infer` costs with the stack up, and the gate needs it only for GX's run
on a sample (the row checks read the suite's file). `gx_helper()`, opened by the command as it
starts, spawns one process that imports GX and opens the project while the command imports
the rest and talks to Prefect and MLflow; the gate then sends its samples there. Without a helper
(flows run by a worker or on Dask, other commands, a helper that died) GX runs in the calling
process: the same function either way.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inferloop.core.errors import InferloopError

if TYPE_CHECKING:  # imported where used: starting the helper must cost this process nothing
    import pandas as pd

    from inferloop.core.dataset import DatasetSpec
    from inferloop.core.settings import GateSettings
    from inferloop.tasks.gate.expectations import Purpose

log = logging.getLogger(__name__)

# GX's result format for a spec with personal columns: unexpected counts, no unexpected values.
COUNTS_ONLY = {"result_format": "SUMMARY", "exclude_unexpected_values": True}


@dataclass(frozen=True)
class GxResult:
    """GX's verdict on one expectation of the suite, over the sample it validated."""

    name: str  # expectation_name of its configuration
    success: bool
    unexpected_count: int | None
    detail: str  # why it failed, in words ("" when it passed)


@dataclass(frozen=True)
class GxRun:
    results: list[GxResult]
    data_docs_uri: str | None


def validate_sample(
    gate: "GateSettings", spec: "DatasetSpec", purpose: "Purpose", sample: "pd.DataFrame", parameters: dict
) -> GxRun:
    """Run the suite's checkpoint on `sample` (its validation results and Data Docs go to the
    state dir, as every GX run's do)."""
    from inferloop.tasks.gate.expectations import gx_lock, load_checkpoint, open_gx_context
    from inferloop.tasks.gate.row_checks import expectation_name

    with gx_lock:
        context = open_gx_context(gate)
        checkpoint = load_checkpoint(context, spec, purpose)
        if spec.personal_columns:  # GX's results and Data Docs hold counts, never sample values
            checkpoint.result_format = COUNTS_ONLY
            checkpoint.save()  # into this process's private copy (GX refuses to run it unsaved)
        result = checkpoint.run(batch_parameters={"dataframe": sample}, expectation_parameters=parameters)
        sites = context.get_docs_sites_urls()
    results = [
        GxResult(
            name=expectation_name(outcome.expectation_config),
            success=bool(outcome.success),
            unexpected_count=outcome.result.get("unexpected_count"),
            detail="" if outcome.success else describe(outcome, sample, spec),
        )
        for validation in result.run_results.values()
        for outcome in validation.results
    ]
    return GxRun(results, sites[0]["site_url"] if sites else None)


def describe(outcome, frame: "pd.DataFrame", spec: "DatasetSpec") -> str:
    """A failed expectation in words, without a personal column's values."""
    config, result = outcome.expectation_config, outcome.result
    column = config.kwargs.get("column")
    if column is not None and column not in frame.columns:
        return f"column '{column}' is missing"
    if outcome.exception_info.get("raised_exception"):
        return str(outcome.exception_info.get("exception_message", "")).split("\n")[0]
    if config.type == "expect_table_columns_to_match_set":
        observed, expected = set(result.get("observed_value") or []), set(config.kwargs["column_set"])
        return (
            f"missing columns {sorted(expected - observed)}, unexpected columns {sorted(observed - expected)}"
        )
    if config.type == "expect_column_values_to_be_in_type_list":
        return (
            f"column '{column}' has type {frame[column].dtype}, expected one of {config.kwargs['type_list']}"
        )
    if "observed_value" in result and column not in spec.pii:  # e.g. a personal column's max
        return f"observed {result['observed_value']}"
    return ""


class HelperGone(Exception):
    """The helper process ended (killed, or its pipe closed): GX runs in this process."""


class GxHelper:
    """One spawned process that imports GX and opens the project as soon as it starts, then runs
    `validate_sample` for this process, one request at a time."""

    def __init__(self) -> None:
        # Spawned, not forked: this process may have threads. (Forked while it had none, measured
        # no faster: 4.89 vs 4.94 s medians of 6 stack-up runs; GX's import is the long pole.)
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end,), name="gx-helper", daemon=True)
        self._process.start()
        child_end.close()
        self._lock = threading.Lock()
        self._used = False
        self._broken = False
        self.reported_gone = False

    def validate(self, *request) -> GxRun:
        """The helper's run; the error it raised, as it raised it; HelperGone when it is gone."""
        with self._lock:
            if self._broken:
                raise HelperGone
            self._used = True
            try:
                self._connection.send(request)
                done, value = self._connection.recv()
            except (EOFError, OSError) as error:
                self._broken = True
                raise HelperGone from error
            except BaseException:  # interrupted between a request and its reply: out of step
                self._broken = True
                raise
        if not done:
            raise value
        return value

    def stop(self) -> None:
        """The helper removes its copy of the project and exits at once (no interpreter teardown
        of GX's modules for this process to wait on); one never asked is stopped without waiting
        for its imports (its handler of SIGTERM removes the copy)."""
        with self._lock:
            self._broken = True
            self._connection.close()
        if not self._used:
            self._process.terminate()
        self._process.join(timeout=5)
        if self._process.is_alive():  # stuck: the next command's sweep removes its copy
            self._process.kill()


def _serve(connection) -> None:
    from tqdm import tqdm

    from inferloop.core.offline import prepare_process
    from inferloop.core.settings import load_settings
    from inferloop.tasks.gate.expectations import open_gx_context, remove_private_copies

    def leave(*_) -> None:
        remove_private_copies()
        os._exit(0)  # at once: the command waits for this process, not for its teardown of GX (0.6 s)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the command, which stops the helper
    signal.signal(signal.SIGTERM, leave)
    prepare_process()  # before GX is imported
    # GX's progress bars (tqdm) would otherwise make a multiprocessing lock, a semaphore that a
    # process leaving with os._exit leaks (the resource tracker warns). One thread runs here.
    tqdm.set_lock(threading.RLock())
    with contextlib.suppress(Exception):  # a project that does not open: the first request says why
        open_gx_context(load_settings().gate)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):  # the command is done (or gone)
            break
        try:
            reply = (True, validate_sample(*request))
        except InferloopError as error:  # ours pickle as they are
            reply = (False, error)
        except Exception as error:  # GX's may not: their type and message do
            reply = (False, InferloopError(f"GX failed: {type(error).__name__}: {error}"))
        try:
            connection.send(reply)
        except OSError:  # the command stopped waiting (interrupted)
            break
    leave()


_helper: GxHelper | None = None


@contextlib.contextmanager
def gx_helper() -> Iterator[None]:
    """GX runs in a helper process, for `load_settings()`'s project, while this is open (the
    helper starts at once). Where no process can start (a sandbox), GX runs in this process."""
    global _helper
    try:
        _helper = GxHelper()
    except OSError as error:
        log.debug("no GX helper process here (%s): GX runs in this process", error)
    try:
        yield
    finally:
        helper, _helper = _helper, None
        if helper is not None:
            helper.stop()


def validate(
    gate: "GateSettings", spec: "DatasetSpec", purpose: "Purpose", sample: "pd.DataFrame", parameters: dict
) -> GxRun:
    """`validate_sample` in the helper where this process started one, else here."""
    helper = _helper
    if helper is not None:
        try:
            return helper.validate(gate, spec, purpose, sample, parameters)
        except HelperGone:
            if not helper.reported_gone:
                log.warning("the GX helper process ended: GX runs in this process")
                helper.reported_gone = True
    return validate_sample(gate, spec, purpose, sample, parameters)
