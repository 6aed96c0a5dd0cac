"""The limits' metrics: per task with a cap, a rate or a fair key, what runs against it,
what waits on each limit, and the starts its rate allowed; the same for each task's
busiest key values (at most 5 a task, so the series stay few).

Figures for every daemon together (read from Redis by the metrics service's refresh,
runner.daemon.metrics_server), as runner_due_jobs is: any daemon's scrape tells it.
A custom collector yields only what the last refresh read, so a key that left the
busiest drops out instead of lingering at its last value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

REASONS = ("cap", "rate", "turn")


class LimitCollector(Collector):
    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Any]] = {}  # client.limits.limits_document's

    def update(self, figures: dict[str, dict[str, Any]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "runner_limit_running", "Jobs running against the task's cap (all daemons).",
            labels=["task"],
        )  # fmt: skip
        waiting = GaugeMetricFamily(
            "runner_limit_waiting",
            "Due jobs held back, by what they wait for: a slot (cap), the rate, or their "
            "key's turn (all daemons).", labels=["task", "reason"],
        )  # fmt: skip
        starts = CounterMetricFamily(
            "runner_limit_rate_starts", "Starts the task's rate allowed (all daemons).",
            labels=["task"],
        )  # fmt: skip
        key_running = GaugeMetricFamily(
            "runner_limit_key_running", "Jobs running, for the task's busiest key values.",
            labels=["task", "key"],
        )  # fmt: skip
        key_waiting = GaugeMetricFamily(
            "runner_limit_key_waiting", "Due jobs held back, for the task's busiest key values.",
            labels=["task", "key"],
        )  # fmt: skip
        for task, f in sorted(self.figures.items()):
            running.add_metric([task], f["running"])
            for reason in REASONS:
                waiting.add_metric([task, reason], f["waiting"][reason])
            if f.get("rate_per_s"):
                starts.add_metric([task], f["rate_starts"])
            for key in f.get("keys", []):
                key_running.add_metric([task, key["key"]], key["running"])
                key_waiting.add_metric([task, key["key"]], sum(key["waiting"].values()))
        yield from (running, waiting, starts, key_running, key_waiting)
