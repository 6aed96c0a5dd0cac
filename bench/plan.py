"""What one benchmark run measures: the same plan is given to every side."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    jobs: int  # no-op jobs for throughput
    late_jobs: int  # delayed jobs for lateness
    spread_s: float  # their due times are uniform over this many seconds...
    offset_s: float  # ...starting this long after enqueueing (so the enqueue is over)
    seed: int  # for the random due times: both sides get the same delays
    timeout_s: float  # for any one step: a stuck run fails instead of hanging
