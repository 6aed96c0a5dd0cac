"""When a failed delivery is tried again, and when it is given up.

Exponential backoff with full jitter: the n-th retry waits a random time between 0
and min(cap, first * 2**(n-1)). Spreading the waits over the whole range keeps a
recovering endpoint from being hit by every delivery that failed during its outage
at the same moment. A delivery is retried until `retry_for` has passed since its
first try; then it is dead-lettered. Pure functions of their inputs (time and the
random source are parameters).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from runner.config.notify import NotifySettings


@dataclass(frozen=True)
class RetryPolicy:
    first: float  # seconds: the bound of the first retry's wait
    cap: float  # the bound no wait exceeds
    retry_for: float  # seconds after the first try, then dead-lettered

    @classmethod
    def of(cls, sink: NotifySettings) -> RetryPolicy:
        return cls(sink.backoff, sink.backoff_max, sink.retry_for)

    def wait(self, failures: int, rng: random.Random) -> float:
        """The pause after the `failures`-th failed try (1 for the first)."""
        bound = min(self.cap, self.first * 2 ** min(failures - 1, 62))
        return rng.uniform(0, bound)

    def next_try(
        self, first_try: float, now: float, failures: int, rng: random.Random
    ) -> float | None:
        """When to try again (a time like `now`), or None: the budget is spent. The
        last try is made at the deadline at the latest, never skipped."""
        deadline = first_try + self.retry_for
        if now >= deadline:
            return None
        return min(now + self.wait(failures, rng), deadline)
