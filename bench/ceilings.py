"""No-op throughput against the ceilings of the two servers every transition goes
through, all measured in the same `make bench` run.

- Redis: jobs per CPU second the Redis server spent while the throughput phase's
  daemon drained its jobs (Redis runs every script on one thread, so that is how many
  jobs a second it could serve if nothing else held the daemon back).
- PostgreSQL: the recorder's write path alone (bench/history.py, the empty table's
  rate), in jobs: three transitions each (scheduled, running, succeeded).

The target: the daemon drains at least 90% of the lower of the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench.stats import Throughput

TARGET = 0.90
EVENTS_PER_JOB = 3


@dataclass(frozen=True)
class Ceilings:
    jobs_per_s: float  # the daemon's, every transition recorded
    redis_jobs_per_s: float
    postgres_jobs_per_s: float
    machine_busy: float | None  # the share of the machine's cores busy while it served
    daemon_cpu_s: float | None  # the daemon's CPU over its life
    daemon_life_s: float  # its wall time from "ready" to "stopped"

    @classmethod
    def of(cls, run: Throughput, history_events_per_s: float) -> Ceilings:
        redis_cpu = run.redis_cpu_s or float("nan")
        return cls(
            run.rate, run.jobs / redis_cpu, history_events_per_s / EVENTS_PER_JOB,
            run.machine_busy, run.daemon_cpu_s, run.seconds,
        )  # fmt: skip

    def lower(self) -> tuple[str, float]:
        return min(
            ("Redis", self.redis_jobs_per_s), ("PostgreSQL", self.postgres_jobs_per_s),
            key=lambda pair: pair[1],
        )  # fmt: skip

    def ratio(self) -> float:
        return self.jobs_per_s / self.lower()[1]

    def targets(self) -> dict[str, bool]:
        name = f"no-op throughput >= {TARGET:.0%} of the lower ceiling ({self.lower()[0]})"
        return {name: self.ratio() >= TARGET}

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs_per_s": round(self.jobs_per_s),
            "redis_ceiling_jobs_per_s": round(self.redis_jobs_per_s),
            "postgres_ceiling_jobs_per_s": round(self.postgres_jobs_per_s),
            "ratio_to_lower": round(self.ratio(), 3),
            "machine_busy": self.machine_busy,
            "daemon_cpu_s": self.daemon_cpu_s,
            "targets": self.targets(),
        }


def render(c: Ceilings) -> str:
    lines = [
        "ceilings: no-op throughput against what Redis and PostgreSQL could take",
        f"  runner, every transition recorded: {c.jobs_per_s:>9,.0f} jobs/s",
        f"  Redis (jobs per CPU second it spent on them): {c.redis_jobs_per_s:>9,.0f} jobs/s",
        f"  PostgreSQL (recorder write path / {EVENTS_PER_JOB}): "
        f"{c.postgres_jobs_per_s:>9,.0f} jobs/s",
        f"  = {c.ratio():.0%} of the lower ({c.lower()[0]})",
        f"  the machine's {os.cpu_count()} cores were {c.machine_busy or 0:.0%} busy while it "
        "served (daemon, Redis and PostgreSQL share them); the daemon used "
        f"{c.daemon_cpu_s or 0:.2f} CPU s over its life, {c.daemon_life_s:.2f} s of it serving",
        "",
        "targets:",
    ]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in c.targets().items()]
    return "\n".join(lines)
