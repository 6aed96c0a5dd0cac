"""The figures the benchmark reports, computed the same way for every side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted samples: a value that really occurred,
    so p99 of 2,000 samples is the 20th worst one, not an interpolation."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Throughput:
    """Jobs drained by one worker process, timed from its start-up to its exit."""

    jobs: int
    seconds: float
    enqueue_seconds: float
    # CPU seconds the Redis server spent meanwhile (runner's run only): its ceiling.
    redis_cpu_s: float | None = None
    # The share of all the machine's cores busy while it served, "daemon ready" to
    # "daemon stopped" (daemon, servers and the rest; bench/machine.py).
    machine_busy: float | None = None
    # The daemon's own CPU seconds over its life (start-up included; its pools' too).
    daemon_cpu_s: float | None = None

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "seconds": round(self.seconds, 3),
            "jobs_per_s": round(self.rate, 1),
        }


@dataclass(frozen=True)
class Lateness:
    """How long after their due time jobs started, from the tasks' own clocks."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    early: int

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> Lateness:
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            p50_ms=round(percentile(ordered, 50), 3),
            p99_ms=round(percentile(ordered, 99), 3),
            max_ms=round(ordered[-1], 3),
            early=sum(1 for value in ordered if value < 0),
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
