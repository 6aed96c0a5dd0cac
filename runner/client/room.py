"""An enqueue that waits for room: jobs refused at their task's max_queued are tried
again, with a growing pause, until they get in or the wait runs out.

The bound is checked in Redis at each try (enqueue.lua), so waiting callers never
pass it together; none is promised a place in line, as none holds one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from runner.jobs import EnqueueResult, NewJob

Submit = Callable[[Sequence[NewJob]], Awaitable[list[EnqueueResult]]]
FIRST_PAUSE_S = 0.01
LONGEST_PAUSE_S = 0.25


async def submit_waiting(
    submit: Submit, jobs: Sequence[NewJob], wait: float | None
) -> list[EnqueueResult]:
    """Each job's result; those still refused when `wait` seconds ran out say so."""
    results = await submit(jobs)
    if not wait or wait <= 0:
        return results
    deadline, pause = time.monotonic() + wait, FIRST_PAUSE_S
    while True:
        refused = [i for i, result in enumerate(results) if result.refused is not None]
        left = deadline - time.monotonic()
        if not refused or left <= 0:
            return results
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_PAUSE_S)
        for i, result in zip(refused, await submit([jobs[i] for i in refused]), strict=True):
            results[i] = result
