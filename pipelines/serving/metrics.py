"""Prometheus metrics of one server: requests, errors and latency per model and version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets (seconds) from a fast text model to a batch of long audio clips.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The server's metrics in their own registry (several servers may share a process)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        labels = ("model", "version", "api", "method")
        self.requests = Counter(
            ":tensorflow:serving:request_count",
            "Requests answered, by model, version, API (rest/grpc) and method",
            (*labels, "status"),
            registry=self.registry,
        )
        self.errors = Counter(
            ":tensorflow:serving:request_errors",
            "Requests answered with an error",
            (*labels, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            ":tensorflow:serving:request_latency_seconds",
            "Time from a request's arrival to its answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batch_size",
            "Items in each batch run by the server-side batcher",
            ("model", "version"),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            ":tensorflow:serving:requests_in_flight",
            "Requests being handled now",
            registry=self.registry,
        )

    def observe(self, model: str, version: str, api: str, method: str, status: str, seconds: float):
        """Count one answered request and its latency."""
        labels = (model, version, api, method)
        self.requests.labels(*labels, status).inc()
        if status not in ("OK", "200"):
            self.errors.labels(*labels, status).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
