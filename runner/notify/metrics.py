"""The webhook sinks' Prometheus figures, on the daemon's own registry: delivery tries
by outcome, and how long a transition took to reach its endpoint."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds from a transition to its delivery: a healthy endpoint answers within tens
# of milliseconds; a delivery retried through an outage takes minutes.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.tries = Counter(
            "runner_webhook_tries",
            "Delivery tries made here, by sink and outcome: delivered (a 2xx answer), "
            "failed (to be retried), dead (its retry_for spent: dead-lettered).",
            ["sink", "outcome"], registry=registry,
        )  # fmt: skip
        self.delay = Histogram(
            "runner_webhook_delivery_seconds",
            "From a transition to its delivery's 2xx answer, by sink (replays left out).",
            ["sink"], buckets=DELAY_BUCKETS, registry=registry,
        )  # fmt: skip

    def tried(self, sink: str, outcome: str) -> None:
        self.tries.labels(sink, outcome).inc()

    def delivered(self, sink: str, seconds: float) -> None:
        self.delay.labels(sink).observe(max(seconds, 0.0))
