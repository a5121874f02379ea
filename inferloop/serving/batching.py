"""Concurrent requests coalesced into one predict call.

Requests queue their checked columns (`RequestContract.checked`); one thread takes what is queued
(waiting at most `serve_max_wait_ms` for more, up to `serve_max_batch_rows` rows, and only while
other requests are known to be on their way: a lone client never waits), makes one Arrow table of
it, runs the suite's row checks and one predict call on the whole batch with the model being
served at that moment, and hands each request its own rows' verdicts and scores. Every row of a
batch is scored by the same version, which the results name. Batches below `SMALL_BATCH_ROWS`
predict on one OpenMP thread, as batch scoring does (`positive_scores`): waking the thread pool
for every tree costs more than it saves there. The limit goes through one `ThreadpoolController`
made once: building one per call (what `threadpool_limits` does) scans the loaded libraries: 6-10
ms a call measured on a busy 2-core machine, against 0.05 ms for `limit` on a kept controller. The
scored rows go to the online log in the same step.
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from inferloop.core.errors import InferloopError
from inferloop.core.registry import ModelVersionRef
from inferloop.serving.champion import ChampionFollower
from inferloop.serving.contract import RequestContract, RowVerdicts
from inferloop.serving.metrics import ServingMetrics
from inferloop.serving.online_log import OnlineLog, online_schema
from inferloop.tasks.model.optimised import OptimisedModel, runtime_of
from inferloop.tasks.model.prediction import SMALL_BATCH_ROWS

log = logging.getLogger("inferloop.serve")


class NoModelLoaded(InferloopError, RuntimeError):
    """No version of @champion is loaded yet."""


@dataclass
class ScoredRequest:
    """One request's share of a batch: the verdicts of its rows, the scores and labels of those
    that passed (in request order), and the version that scored them."""

    ref: ModelVersionRef
    verdicts: RowVerdicts
    scores: np.ndarray
    labels: np.ndarray
    degraded: str | None = None  # the champion's open breach, when the model scores under it


@dataclass
class _Job:
    columns: dict[str, list]  # checked, in the spec's order
    rows: int  # as many as it reserved in the online log
    request_id: str
    result: Future


_STOP = object()


class Coalescer:
    def __init__(
        self,
        contract: RequestContract,
        follower: ChampionFollower,
        online_log: OnlineLog,
        metrics: ServingMetrics,
        decision_threshold: float,
        max_batch_rows: int,
        max_wait_ms: float,
    ):
        self.contract, self.follower, self.online_log, self.metrics = contract, follower, online_log, metrics
        self.default_threshold = decision_threshold  # for versions registered without their own
        self.max_batch_rows, self.max_wait = max_batch_rows, max_wait_ms / 1000
        self.schema = online_schema(contract.schema)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._held_over: _Job | None = None
        self._thread: threading.Thread | None = None
        self._threadpools = None  # made at the first prediction, once the model's libraries are loaded
        # Requests being answered (the app counts them from the event loop): a batch waits for
        # more only while it holds fewer than this.
        self.active_requests = 0

    def submit(self, columns: dict[str, list], rows: int, request_id: str) -> Future:
        """Queue a request's checked columns of `rows` rows (reserved in the online log); the
        future resolves to its `ScoredRequest`."""
        job = _Job(columns, rows, request_id, Future())
        self._queue.put(job)
        return job.result

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="coalesce-predict", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the queued requests, then stop."""
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._score(batch)

    def _next_batch(self) -> list[_Job] | None:
        first = self._held_over or self._queue.get()
        self._held_over = None
        if first is _STOP:
            return None
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_batch_rows:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(batch) >= self.active_requests:
                    break
                try:
                    job = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is _STOP or rows + job.rows > self.max_batch_rows:
                self._held_over = job  # the next batch starts with it
                break
            batch.append(job)
            rows += job.rows
        return batch

    def _score(self, batch: list[_Job]) -> None:
        try:
            results = self._predict(batch)
        except Exception as error:
            for job in batch:
                self.online_log.release(job.rows)
                job.result.set_exception(error)
            if not isinstance(error, NoModelLoaded):
                log.exception("predicting a batch of %d requests failed", len(batch))
            return
        for job, result in zip(batch, results, strict=True):
            job.result.set_result(result)

    def _predict(self, batch: list[_Job]) -> list[ScoredRequest]:
        served = self.follower.current  # one version for the whole batch, even if a swap follows
        if served is None:
            raise NoModelLoaded("No model is loaded yet: see /health/ready")
        table = self.contract.table([job.columns for job in batch])
        verdicts = self.contract.row_verdicts(table)
        passed = table.filter(pa.array(~verdicts.bad)) if verdicts.failed else table
        if passed.num_rows:
            scores = self._positive_scores(served.model, self.contract.model_input(passed))
        else:
            scores = np.empty(0)
        labels = (scores >= served.ref.threshold(self.default_threshold)).astype(np.int8)
        self.metrics.batch_rows.observe(table.num_rows)
        self.metrics.batch_requests.observe(len(batch))

        results, start, scored_start, passed_per_job = [], 0, 0, []
        for job in batch:
            n = job.rows
            bad = verdicts.bad[start : start + n]
            failed = {p - start: names for p, names in verdicts.failed.items() if start <= p < start + n}
            k = int(n - bad.sum())
            results.append(
                ScoredRequest(
                    served.ref,
                    RowVerdicts(bad, failed),
                    scores[scored_start : scored_start + k],
                    labels[scored_start : scored_start + k],
                    served.degraded,
                )
            )
            passed_per_job.append(k)
            start, scored_start = start + n, scored_start + k
        self._log_rows(batch, passed, scores, labels, served, passed_per_job)
        return results

    def _positive_scores(self, model, features) -> np.ndarray:
        """`positive_scores`, with the thread pools' controller made once. A compiled model
        takes no limit: it predicts on one thread below its own SMALL_BATCH_ROWS, and setting
        and restoring the OpenMP limit cost 0.05-0.12 ms a call, as much as its prediction."""
        if isinstance(model, OptimisedModel):
            return model.positive_scores(features)
        if len(features) >= SMALL_BATCH_ROWS:
            return model.predict_proba(features)[:, 1]
        if self._threadpools is None:
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()
        with self._threadpools.limit(limits=1, user_api="openmp"):
            return model.predict_proba(features)[:, 1]

    def _log_rows(self, batch, passed, scores, labels, served, passed_per_job) -> None:
        rows = passed.num_rows
        request_ids = np.repeat(np.array([job.request_id for job in batch], dtype=object), passed_per_job)
        scored_at = datetime.now(UTC)
        columns = [
            *passed.columns,
            pa.array(scores, pa.float64()),
            pa.array(labels, pa.int8()),
            pa.array([served.ref.version] * rows, pa.string()),
            pa.array([runtime_of(served.model)] * rows, pa.string()),
            pa.array(request_ids, pa.string()),
            pa.array([scored_at] * rows, pa.timestamp("us", tz="UTC")),
        ]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self.online_log.append(table, reserved=sum(job.rows for job in batch))
