"""Prometheus metrics of one serving app, in its own registry (two apps in one process never collide).

Names are prefixed ``genrel_``; ``endpoint`` labels are route templates, never raw paths, so the label
set stays small.
"""

from __future__ import annotations

from collections.abc import Callable

from genrel.errors import MissingExtraError
from genrel.serve.batcher import BatchObserver

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError:  # pragma: no cover - the [serve] extra brings it
    raise MissingExtraError("prometheus-client", "serve") from None

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics(BatchObserver):
    """Request counts and latencies, pairs scored, batch sizes, queue depth and scorer errors."""

    def __init__(self, model: str, backend: str, queue_depth: Callable[[], int]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "genrel_requests", "HTTP requests by endpoint and status code.", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "genrel_request_latency_seconds", "HTTP request latency.", ["endpoint"],
            buckets=_LATENCY_BUCKETS_S, registry=r,
        )
        self.pairs = Counter("genrel_pairs_scored", "Query-document pairs scored.", registry=r)
        self.batch_size = Histogram(
            "genrel_batch_size_pairs", "Pairs per scorer call.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.batch_latency = Histogram(
            "genrel_batch_latency_seconds", "Duration of one scorer call.", buckets=_LATENCY_BUCKETS_S, registry=r
        )
        self.errors = Counter(
            "genrel_scorer_errors", "Failed scorer calls (exception) and unusable results (bad_output).",
            ["kind"], registry=r,
        )
        self.rejected = Counter(
            "genrel_rejected_requests", "Requests refused before scoring, by reason.", ["reason"], registry=r
        )
        queue = Gauge("genrel_queue_depth_pairs", "Pairs waiting for a batch.", registry=r)
        queue.set_function(lambda: float(queue_depth()))
        info = Gauge("genrel_model_info", "The model being served (value is always 1).", ["model", "backend"],
                     registry=r)
        info.labels(model=model, backend=backend).set(1)

    # BatchObserver
    def batch_done(self, size: int, seconds: float) -> None:
        self.pairs.inc(size)
        self.batch_size.observe(size)
        self.batch_latency.observe(seconds)

    def scorer_error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def request_done(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
