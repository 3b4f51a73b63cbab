"""Micro-batching across concurrent requests: pairs from many requests share one scorer call.

Each request puts its pairs on one queue, each pair with its own future, and awaits them in order, so
a request's results keep its order even when its pairs are split across batches. One worker task takes
up to ``max_batch_size`` pairs, waiting at most ``max_wait_s`` after the oldest pair arrived, and runs
``Scorer.score_pairs`` on a dedicated thread so the event loop keeps answering. A batch that mixes
``explain`` values becomes one scorer call per value. A scorer whose results depend on the other
pairs of the call (``listwise = True``, e.g. BM25's IDF over the candidates) gets one whole request per
call instead.

Overload is refused up front: besides the hard ``max_queue_pairs`` bound, a request is refused
(:class:`QueueFull`, with a retry delay) when the pairs already queued would take longer than
``max_queue_wait_s`` to score at the recently measured rate, so an overloaded server answers 503 at
once instead of letting every request wait out the queue. A request is never refused for its own size;
until the first batch has measured the rate, only ``max_queue_pairs`` applies.

Failures stay local: when a scorer call raises, each request in the batch is retried alone, so one
poisoned document fails only its own request; a result that is not a finite score and distribution
fails only its pair. The worker itself never dies on a scorer error. This module knows nothing about
HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import numbers
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from genrel.data.pair import Pair
from genrel.score.base import Scored, Scorer

log = logging.getLogger(__name__)


class ScoringError(Exception):
    """A pair could not be scored; ``kind`` is ``exception`` (the scorer raised) or ``bad_output``."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class QueueFull(Exception):
    """Accepting the request would exceed ``max_queue_pairs`` or ``max_queue_wait_s``; retry after
    ``retry_after_s`` (about the time the queue ahead needs)."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BatchObserver:
    """Hooks the batcher calls; the default does nothing. ``genrel.serve.metrics`` implements them."""

    def batch_done(self, size: int, seconds: float) -> None: ...

    def scorer_error(self, kind: str) -> None: ...


@dataclass
class _Job:
    pair: Pair
    explain: bool
    request: int  # which request the pair belongs to, to retry requests one by one after a failure
    future: asyncio.Future
    enqueued: float


class MicroBatcher:
    """Queue + worker task around one scorer. ``start`` and ``stop`` run on the serving event loop."""

    def __init__(
        self,
        scorer: Scorer,
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.005,
        max_queue_pairs: int = 10_000,
        max_queue_wait_s: float | None = None,
        observer: BatchObserver | None = None,
    ):
        self.scorer = scorer
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_pairs = max_queue_pairs
        self.max_queue_wait_s = max_queue_wait_s
        self.pairs_per_s: float | None = None  # moving average of scorer throughput; None until measured
        self._scoring = 0  # pairs in the scorer call now running
        self.observer = observer or BatchObserver()
        # A list-wise scorer (BM25: IDF over the query's candidates) must see each request alone and whole.
        self.whole_requests = bool(getattr(scorer, "listwise", False))
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False
        self._request_ids = itertools.count()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrel-scorer")
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="genrel-batcher")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Score what is already queued (up to ``timeout_s``), then end the worker."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            log.warning("batcher did not drain within %.0f s; failing %d queued pairs", timeout_s, self.queue_depth)
            self._task.cancel()
        for job in self._pending:
            _fail(job, ScoringError("the server is shutting down", "shutdown"))
        self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    @property
    def queue_depth(self) -> int:
        """Pairs waiting for a batch (cancelled ones included until the worker skips them)."""
        return len(self._pending)

    # -- requests ------------------------------------------------------------------------------------

    async def score(self, pairs: Sequence[Pair], *, explain: bool = False) -> list[Scored]:
        """Results in the order of ``pairs``. Raises ``ScoringError`` or ``QueueFull``; on cancellation
        the request's pairs still waiting are dropped."""
        if not self.running:
            raise ScoringError("the scorer is not running", "shutdown")
        self._admit(len(pairs))
        loop = asyncio.get_running_loop()
        request = next(self._request_ids)
        now = loop.time()
        futures = [loop.create_future() for _ in pairs]
        self._pending.extend(_Job(p, explain, request, f, now) for p, f in zip(pairs, futures))
        self._wake.set()
        try:
            return list(await asyncio.gather(*futures))
        finally:
            for future in futures:  # after an error or a cancellation, the rest need not be scored
                future.cancel()

    def _admit(self, n: int) -> None:
        """Raise QueueFull when ``n`` more pairs would overfill the queue or wait too long behind it."""
        ahead = len(self._pending) + self._scoring
        wait_s = ahead / self.pairs_per_s if self.pairs_per_s else 0.0
        if ahead + n > self.max_queue_pairs:
            raise QueueFull(f"{ahead} pairs already waiting (max_queue_pairs {self.max_queue_pairs})",
                            retry_after_s=max(1.0, wait_s))
        if self.max_queue_wait_s is not None and wait_s > self.max_queue_wait_s:
            raise QueueFull(f"{ahead} pairs already waiting, about {wait_s:.1f} s of scoring "
                            f"(max_queue_wait_s {self.max_queue_wait_s:g})", retry_after_s=wait_s)

    def _measured(self, pairs: int, seconds: float) -> None:
        rate = pairs / max(seconds, 1e-6)
        self.pairs_per_s = rate if self.pairs_per_s is None else 0.8 * self.pairs_per_s + 0.2 * rate

    # -- worker --------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._wait_for_batch()
            batch = self._take_batch()
            if not batch:
                continue
            try:
                await self._score_batch(batch)
            except Exception:  # a bug here must not stop the server; fail this batch and go on
                log.exception("batcher error; failing %d pairs", len(batch))
                for job in batch:
                    _fail(job, ScoringError("internal error while scoring", "exception"))

    async def _wait_for_batch(self) -> None:
        """Wait until a full batch is queued or the oldest pair has waited ``max_wait_s``."""
        loop = asyncio.get_running_loop()
        deadline = self._pending[0].enqueued + self.max_wait_s
        while len(self._pending) < self.max_batch_size and not self._stopping:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        if self.whole_requests:  # one request per call, however many pairs it has
            while self._pending and (not batch or self._pending[0].request == batch[0].request):
                job = self._pending.popleft()
                if not job.future.done():
                    batch.append(job)
            return batch
        while self._pending and len(batch) < self.max_batch_size:
            job = self._pending.popleft()
            if not job.future.done():  # skip pairs of requests that already failed, timed out or left
                batch.append(job)
        return batch

    async def _score_batch(self, batch: list[_Job]) -> None:
        for explain in (False, True):
            jobs = [j for j in batch if j.explain is explain]
            if jobs:
                await self._score_jobs(jobs, explain, isolate=True)

    async def _score_jobs(self, jobs: list[_Job], explain: bool, *, isolate: bool) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            self._scoring = len(jobs)
            try:
                results = await loop.run_in_executor(self._executor, self._call_scorer, [j.pair for j in jobs], explain)
            finally:
                self._scoring = 0
        except Exception as exc:
            kind = exc.kind if isinstance(exc, ScoringError) else "exception"
            self.observer.scorer_error(kind)
            requests = sorted({j.request for j in jobs})
            log.warning("scorer failed on a batch of %d pairs from %d requests: %s", len(jobs), len(requests), exc)
            if isolate and len(requests) > 1:
                for request in requests:
                    await self._score_jobs([j for j in jobs if j.request == request], explain, isolate=False)
                return
            message = str(exc) if isinstance(exc, ScoringError) else f"the scorer failed: {type(exc).__name__}: {exc}"
            message = message[:500]  # the answer names the failure without pasting a huge repr
            for job in jobs:
                _fail(job, ScoringError(message, kind))
            return
        seconds = time.perf_counter() - started
        self._measured(len(jobs), seconds)
        self.observer.batch_done(len(jobs), seconds)
        for job, scored in zip(jobs, results):
            problem = invalid_result(scored)
            if problem is None:
                if not job.future.done():
                    job.future.set_result(scored)
            else:
                self.observer.scorer_error("bad_output")
                log.warning("bad model output for document %r: %s", job.pair.row_id, problem)
                _fail(job, ScoringError(f"the model returned an invalid result for document '{job.pair.row_id}': "
                                        f"{problem}", "bad_output"))

    def _call_scorer(self, pairs: list[Pair], explain: bool) -> list[Scored]:
        results = self.scorer.score_pairs(pairs, explain=explain)
        if not isinstance(results, list) or len(results) != len(pairs):
            got = len(results) if hasattr(results, "__len__") else type(results).__name__
            raise ScoringError(f"the scorer returned {got} results for {len(pairs)} pairs", "bad_output")
        return results


def invalid_result(scored: object) -> str | None:
    """Why a scorer result cannot be served, or None when it can."""
    if not isinstance(scored, Scored):
        return f"expected a Scored, got {type(scored).__name__}"
    if not isinstance(scored.label, str):
        return "label is not a string"
    if not _finite(scored.score):
        return f"score {scored.score!r} is not a finite number"
    if not isinstance(scored.probabilities, dict) or not scored.probabilities:
        return "probabilities is not a non-empty mapping"
    for name, p in scored.probabilities.items():
        if not _finite(p) or not -1e-6 <= p <= 1 + 1e-6:
            return f"probability of {name!r} is {p!r}"
    return None


def _finite(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _fail(job: _Job, error: ScoringError) -> None:
    if not job.future.done():
        job.future.set_exception(error)
