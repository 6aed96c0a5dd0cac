"""The sources' Prometheus figures, on the daemon's own registry: messages per source and
outcome, and whether a source is held back by the backlog."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

OUTCOMES = ("accepted", "duplicate", "dead_lettered")


class SourceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "runner_source_messages",
            "Messages a source settled here, by outcome: accepted (a new job), duplicate "
            "(redelivered; its job already existed), dead_lettered (malformed).",
            ["source", "outcome"], registry=registry,
        )  # fmt: skip
        self.held_back = Gauge(
            "runner_source_held_back",
            "1 while a source here stops reading because runner's due backlog is over its "
            "max_backlog, else 0.", ["source"], registry=registry,
        )  # fmt: skip

    def settled(self, source: str, created: int, duplicates: int, dead_lettered: int) -> None:
        for outcome, n in zip(OUTCOMES, (created, duplicates, dead_lettered), strict=True):
            if n:
                self.messages.labels(source, outcome).inc(n)

    def held(self, source: str, held: bool) -> None:
        self.held_back.labels(source).set(1 if held else 0)
