"""The daemon's Prometheus metrics: one registry per daemon, names fixed by the contract.

The daemon runs ~10,000 jobs/s, so the per-job figures (outcomes, retries,
duration and lateness by task) are plain integers in a dict of per-task
records, bumped on the event loop without locks or label lookups; a custom
collector folds them into metric families only when /metrics is scraped.
Everything else changes a few times a second at most and uses
prometheus_client's own types. Gauges that need Redis are set by the metrics
service's periodic refresh (runner.daemon.metrics_server), never on a scrape, so a
scrape costs the same with a thousand jobs or a billion.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from runner.daemon.limit_metrics import LimitCollector

# Seconds; jobs range from a no-op to minutes of work.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Seconds late: the pump aims at a millisecond, so the low end is fine-grained.
LATENESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
OUTCOMES = ("succeeded", "failed", "retrying", "cancelled")
# A job whose task this daemon cannot know: reaped from a dead daemon, or set aside
# as malformed before it was read.
UNKNOWN_TASK = "(unknown)"
# The finish script's action -> the outcome label.
_ACTION_OUTCOME = {"succeed": "succeeded", "fail": "failed", "retry_later": "retrying"}

CANCEL_MEMORY_S = 300.0  # a cancel seen twice (message and lease renewal) within this counts once
PoolReader = Callable[[], Mapping[str, tuple[int, int]]]  # kind -> (running, free slots)


class _Buckets:
    """A histogram's raw counts: one per bucket, the last for +Inf."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le is inclusive
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class _TaskStats:
    __slots__ = ("duration", "finished", "lateness", "retries")

    def __init__(self) -> None:
        self.finished = dict.fromkeys(OUTCOMES, 0)
        self.retries = 0
        self.duration = _Buckets(DURATION_BUCKETS)
        self.lateness = _Buckets(LATENESS_BUCKETS)


class _JobCollector(Collector):
    """Per-task job figures and pool gauges, built at scrape time from plain counts."""

    def __init__(self, tasks: dict[str, _TaskStats], pools: PoolReader) -> None:
        self.tasks = tasks
        self.pools = pools

    def collect(self) -> Iterator[Metric]:
        finished = CounterMetricFamily(
            "runner_jobs_finished", "Attempts ended, as recorded in Redis, by task and outcome.",
            labels=["task", "outcome"],
        )  # fmt: skip
        retries = CounterMetricFamily(
            "runner_job_retries", "Attempts that failed and were scheduled again.", labels=["task"]
        )
        duration = HistogramMetricFamily(
            "runner_job_duration_seconds", "Run time of one attempt.", labels=["task"]
        )
        lateness = HistogramMetricFamily(
            "runner_job_lateness_seconds", "Start time minus due time.", labels=["task"]
        )
        for task, stats in sorted(self.tasks.items()):
            for outcome, count in stats.finished.items():
                finished.add_metric([task, outcome], count)
            retries.add_metric([task], stats.retries)
            duration.add_metric([task], stats.duration.cumulative(), stats.duration.total)
            lateness.add_metric([task], stats.lateness.cumulative(), stats.lateness.total)
        yield from (finished, retries, duration, lateness)
        running = GaugeMetricFamily(
            "runner_jobs_running", "Jobs running in this daemon, by kind.", labels=["kind"]
        )
        free = GaugeMetricFamily(
            "runner_pool_free_slots", "Jobs this daemon could start now, by kind.", labels=["kind"]
        )
        for kind, (busy, slots) in sorted(self.pools().items()):
            running.add_metric([kind], busy)
            free.add_metric([kind], slots)
        yield from (running, free)


class Metrics:
    """The registry of one daemon and the calls its services make."""

    def __init__(self, daemon: str, version: str, pools: PoolReader = dict) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._tasks: dict[str, _TaskStats] = {}
        self._cancels: dict[tuple[str, int], float] = {}  # (job id, claim) -> when counted
        self.registry.register(_JobCollector(self._tasks, pools))
        self.limits = LimitCollector()  # set by the metrics service's refresh
        self.registry.register(self.limits)
        r = self.registry
        self.due = Gauge("runner_due_jobs", "Jobs due now in Redis, by kind and queue (all "
                         "daemons).", ["kind", "queue"], registry=r)  # fmt: skip
        self.blocked = Gauge(
            "runner_blocked_jobs", "Jobs waiting for the jobs they depend on, by task and "
            "queue (all daemons).", ["task", "queue"], registry=r,
        )  # fmt: skip
        self.oldest_due_lag = Gauge(
            "runner_oldest_due_lag_seconds", "How long the queue's earliest due job has waited.",
            ["queue"], registry=r,
        )  # fmt: skip
        self.lease_expiries = Counter(
            "runner_lease_expiries", "Leases of dead daemons' jobs this daemon reaped.", registry=r
        )
        self.cron_fires = Counter(
            "runner_cron_fires", "Cron ticks this daemon enqueued.", ["schedule"], registry=r
        )
        self.cron_skips = Counter(
            "runner_cron_skips", "Cron ticks skipped (overlap = skip).", ["schedule"], registry=r
        )
        self.recorder_backlog = Gauge(
            "runner_recorder_backlog_entries",
            "The queue's stream entries not yet committed to Postgres (all daemons).",
            ["queue"], registry=r,
        )  # fmt: skip
        self.recorder_events = Counter(
            "runner_recorder_events", "Transitions this daemon wrote to Postgres.", registry=r
        )
        self.recorder_batch = Histogram(
            "runner_recorder_batch_seconds", "Time to write one batch to Postgres.",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.store_up = Gauge(
            "runner_store_up", "Whether the server answered the last check (1) or not (0).",
            ["server"], registry=r,
        )  # fmt: skip
        self.loop_lag = Gauge(
            "runner_event_loop_lag_seconds",
            "Largest timer overshoot of the event loop in the last refresh period.", registry=r,
        )  # fmt: skip
        info = Gauge("runner_daemon_info", "This daemon's id and version (always 1).",
                     ["daemon", "version"], registry=r)  # fmt: skip
        info.labels(daemon, version).set(1)

    def _stats(self, task: str) -> _TaskStats:
        stats = self._tasks.get(task)
        if stats is None:
            stats = self._tasks[task] = _TaskStats()
        return stats

    # Per job: on the event loop, a dict lookup and a few integer additions.

    def started(self, task: str, lateness_s: float) -> None:
        self._stats(task).lateness.observe(max(lateness_s, 0.0))

    def ran(self, task: str, seconds: float) -> None:
        self._stats(task).duration.observe(seconds)

    def finished(self, task: str, action: str, reply: int) -> None:
        """An outcome the finish script answered: 1 recorded, 2 set aside as malformed
        (the job is failed), 0 fenced off or -1 dropped (not this daemon's to count)."""
        if reply == 2:
            self._stats(task).finished["failed"] += 1
            return
        outcome = _ACTION_OUTCOME.get(action)
        if reply != 1 or outcome is None:
            return
        stats = self._stats(task)
        stats.finished[outcome] += 1
        if outcome == "retrying":
            stats.retries += 1

    def cancelled(self, task: str, job_id: str, claim: int) -> None:
        """A run (named by its claim) cancelled by request. Its owner learns it from the
        cancel message or from a lease renewal, whichever comes first, and maybe both."""
        now = time.monotonic()
        if len(self._cancels) > 1000:
            self._cancels = {k: t for k, t in self._cancels.items() if now - t < CANCEL_MEMORY_S}
        if (job_id, claim) in self._cancels:
            return
        self._cancels[(job_id, claim)] = now
        self._stats(task).finished["cancelled"] += 1

    def set_aside(self) -> None:
        """A malformed job failed by a script before its task could be read."""
        self._stats(UNKNOWN_TASK).finished["failed"] += 1

    def lease_expired(self, state: str) -> None:
        """A dead daemon's job reaped here: back to the schedule or failed."""
        self.lease_expiries.inc()
        if state in ("retrying", "failed"):
            self._stats(UNKNOWN_TASK).finished[state] += 1

    def cron_tick(self, schedule: str, outcome: str) -> None:
        if outcome == "scheduled":
            self.cron_fires.labels(schedule).inc()
        elif outcome == "skipped":
            self.cron_skips.labels(schedule).inc()

    def recorded(self, events: int, seconds: float) -> None:
        self.recorder_events.inc(events)
        self.recorder_batch.observe(seconds)
