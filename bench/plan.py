"""What one benchmark run measures: the same plan is given to every side."""

from __future__ import annotations

import random
from dataclasses import dataclass


def delays(count: int, spread_s: float, offset_s: float, seed: int) -> list[float]:
    """The delayed jobs' delays, each from its own enqueue: uniform over `spread_s`
    after `offset_s`. Every system draws the same list from the same seed."""
    rng = random.Random(seed)
    return [offset_s + rng.uniform(0, spread_s) for _ in range(count)]


@dataclass(frozen=True)
class Plan:
    jobs: int  # no-op jobs for throughput
    late_jobs: int  # delayed jobs for lateness
    spread_s: float  # their due times are uniform over this many seconds...
    offset_s: float  # ...starting this long after enqueueing (so the enqueue is over)
    seed: int  # for the random due times: both sides get the same delays
    timeout_s: float  # for any one step: a stuck run fails instead of hanging

    def delays(self) -> list[float]:
        return delays(self.late_jobs, self.spread_s, self.offset_s, self.seed)

    def late_options(self) -> list[str]:
        """The plan's delayed jobs as a peer's `late` command takes them (bench/late.py)."""
        return [
            "--jobs", str(self.late_jobs), "--spread", repr(self.spread_s),
            "--offset", repr(self.offset_s), "--seed", str(self.seed),
        ]  # fmt: skip
