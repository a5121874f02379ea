"""The endpoint's Prometheus metrics (/metrics), in a registry of its own (one per app)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10_000)


class ServingMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inferloop_serve_requests",
            "Scoring requests (/invocations, V2 infer), by HTTP status",
            ["status"],
            registry=r,
        )
        self.rows = Counter(
            "inferloop_serve_rows", "Rows received, by outcome (scored, rejected)", ["outcome"], registry=r
        )
        self.rate_limited = Counter(
            "inferloop_serve_rate_limited",
            "Requests refused by the per-key rate limit (429), by key name",
            ["key"],
            registry=r,
        )
        self.latency = Histogram(
            "inferloop_serve_request_seconds",
            "Time to answer /invocations",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "inferloop_serve_batch_rows", "Rows per predict call", buckets=ROW_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "inferloop_serve_batch_requests",
            "Requests coalesced into one predict call",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.served = Gauge(
            "inferloop_serve_model_info",
            "The model version being served (1)",
            ["model", "version"],
            registry=r,
        )
        self.swaps = Counter("inferloop_serve_model_swaps", "Times a new version was swapped in", registry=r)
        self.stale = Gauge(
            "inferloop_serve_registry_stale",
            "1 while the registry cannot be checked for @champion",
            registry=r,
        )
        self.seconds_since_check = Gauge(
            "inferloop_serve_seconds_since_registry_check",
            "Seconds since the registry last answered",
            registry=r,
        )
        self.degraded = Gauge(
            "inferloop_serve_degraded",
            "1 while the champion's confirmed breach is open and the degraded-model policy applies",
            registry=r,
        )
        self.queue_rows = Gauge(
            "inferloop_serve_online_queue_rows", "Scored rows waiting to be written to the lake", registry=r
        )
        self.rows_written = Gauge(
            "inferloop_serve_online_rows_written", "Online rows written to the lake", registry=r
        )

    def swapped(self, model: str, old_version: str | None, new_version: str) -> None:
        if old_version is not None:
            self.served.remove(model, old_version)
            self.swaps.inc()
        self.served.labels(model, new_version).set(1)
