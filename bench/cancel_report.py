"""The cancel benchmark's figures (bench/cancel.py), its targets, and the printed table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bench.stats import percentile

TARGET_MS = 1000.0  # a cancelled running job's work stops within 1 s


@dataclass(frozen=True)
class Timing:
    """Milliseconds from the cancel request to an event, over the tries; a stuck try
    (None: the event never came) counts as slower than any other, and a percentile
    that falls on one is None."""

    tries: int
    stuck: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def from_samples(cls, samples: list[float | None]) -> Timing:
        ordered = sorted(math.inf if s is None else s for s in samples)

        def shown(value: float) -> float | None:
            return None if value == math.inf else round(value, 1)

        return cls(
            tries=len(ordered),
            stuck=sum(1 for s in samples if s is None),
            p50_ms=shown(percentile(ordered, 50)),
            p99_ms=shown(percentile(ordered, 99)),
            max_ms=shown(ordered[-1]),
        )

    def within(self, limit_ms: float) -> bool:
        return self.p99_ms is not None and self.p99_ms < limit_ms


@dataclass(frozen=True)
class CancelFigures:
    tries: int
    async_logged: Timing  # the daemon logs the cancel
    async_stopped: Timing  # the next async job starts in the freed slot
    io_cancelled: Timing  # the cancel call returned: Redis holds `cancelled`
    io_logged: Timing
    cpu_logged: Timing
    cpu_stopped: Timing  # the next cpu job starts on the replacement worker
    cpu_workers: int  # the pool's size in the config
    workers_before: list[int]  # cpu worker processes counted before each try
    workers_after: list[int]  # and after it
    cpu_on_new_worker: int  # tries whose next job ran on a worker started after the cancel
    io_threads: int  # the io pool's size in the config
    io_dropped: int  # cancelled io jobs still `cancelled`, no outcome, once their threads ended
    io_free_threads: int  # io jobs that could then start at once, of io_threads
    early: dict[str, int]  # cancels that reached the daemon before the job's task first ran
    stuck_after_s: float  # a try whose work had not stopped by then is stuck
    restarts: int  # daemons restarted after a stuck try

    def targets(self) -> dict[str, bool]:
        sizes = {*self.workers_before, *self.workers_after}
        limit = f"within {TARGET_MS:g} ms (p99)"
        return {
            f"cancel stops a running async job {limit}": self.async_stopped.within(TARGET_MS),
            f"cancel stops a running io job {limit}": self.io_logged.within(TARGET_MS),
            f"cancel stops a running cpu job {limit}": self.cpu_stopped.within(TARGET_MS),
            f"the cpu pool keeps its {self.cpu_workers} workers": sizes == {self.cpu_workers},
            "the next cpu job runs on the replaced worker": self.cpu_on_new_worker == self.tries,
            "a cancelled io job's result is dropped": self.io_dropped == self.tries,
            "every io thread is free again once the cancelled ones returned": (
                self.io_free_threads == self.io_threads
            ),
        }

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "target_ms": TARGET_MS, "targets": self.targets()}


def _ms(value: float | None) -> str:
    return f"{'stuck':>9}   " if value is None else f"{value:>9.1f} ms"


def _timing_line(name: str, t: Timing, note: str) -> str:
    return f"  {name:<14}{_ms(t.p50_ms)}{_ms(t.p99_ms)}{_ms(t.max_ms)}{t.stuck:>7}   {note}"


def _span(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def render(f: CancelFigures) -> str:
    early = ", ".join(f"{kind} {count}" for kind, count in f.early.items())
    lines = [
        f"cancel: a running job cancelled by a client in another process, {f.tries} tries a "
        "kind (request - event)",
        f"  {'':<14}{'p50':>12}{'p99':>12}{'max':>12}{'stuck':>7}",
        _timing_line("async logged", f.async_logged, "the daemon logs the cancel"),
        _timing_line("async stopped", f.async_stopped, "the next async job starts in its slot"),
        _timing_line("io cancelled", f.io_cancelled, "cancel returns: Redis says cancelled"),
        _timing_line("io logged", f.io_logged, "the daemon drops it; its thread runs on"),
        _timing_line("cpu logged", f.cpu_logged, "the daemon logs the cancel"),
        _timing_line("cpu stopped", f.cpu_stopped, "the next cpu job starts on a new worker"),
        f"  cpu pool: {f.cpu_workers} workers; {_span(f.workers_before)} before each try, "
        f"{_span(f.workers_after)} after; next job on a new worker {f.cpu_on_new_worker}/{f.tries}",
        f"  io: {f.io_dropped}/{f.tries} still cancelled once their threads returned; then "
        f"{f.io_free_threads}/{f.io_threads} io jobs started at once",
        f"  cancels that reached the daemon before the job's task first ran: {early}",
        f"  stuck: no stop within {f.stuck_after_s:g} s (the daemon was restarted "
        f"{f.restarts} times to go on)",
        "",
        "targets:",
    ]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in f.targets().items()]
    return "\n".join(lines)
