"""Waiting for a job to end, woken by the transition stream rather than by polling.

The feed's starting point is taken before the job is read: a transition written
between the two is then both in what was read and in what the feed brings, never
in neither. While nothing happens to the job, the wait is one blocking read in
Redis at a time (at most a minute each, so a lost connection is noticed); each
batch of transitions is looked through for the job's, and only when one ends it is
the job read again, for its result or error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from runner.errors import ResultTimeout
from runner.events.feed import Feed
from runner.events.filters import TransitionFilter
from runner.states import ENDED
from runner.store import RedisStore

LONGEST_READ_S = 60.0


class _Job(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def done(self) -> bool: ...


J = TypeVar("J", bound=_Job)


async def wait_until_ended(
    store: RedisStore, get: Callable[[str], Awaitable[J]], job_id: str, timeout: float | None
) -> J:
    """The job (as `get` reads it) once it has ended; ResultTimeout (a TimeoutError)
    after `timeout` seconds; what `get` raises for an id no job has."""
    deadline = None if timeout is None else time.monotonic() + timeout
    feed = Feed(store, TransitionFilter.of(job_ids=[job_id]), named=False)
    await feed.start_now()
    job = await get(job_id)
    while not job.done:
        left = LONGEST_READ_S if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise ResultTimeout(job_id, job.state, timeout or 0.0)
        batch = await feed.next_batch(block_ms=max(int(min(left, LONGEST_READ_S) * 1000), 1))
        if any(t.to_state in ENDED for t in batch):
            job = await get(job_id)
    return job
