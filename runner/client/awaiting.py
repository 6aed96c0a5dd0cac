"""Waiting for jobs to end, woken by the transition stream rather than by polling.

A client may wait for thousands of jobs at once (a web handler awaiting each
request's job): one reader per client and queue follows that queue's stream for
all of them, on a Redis connection of its own, blocked in Redis (XREAD, at most a
minute at a time) until something is written, and wakes the waiters of each job
that ended. It runs only while someone waits on a job of its queue: the last
waiter to leave stops it and closes its connection, so a client at rest holds
nothing open.

The reader's starting point is taken before a waiter reads its job: a transition
written between the two is then both in what was read and in what the reader
brings, never in neither. A waiter woken reads its job again, for its result or
error; a reader that fails (Redis unreachable) hands its error to every waiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from runner.errors import ResultTimeout
from runner.events.feed import Feed
from runner.states import ENDED
from runner.store import DEFAULT_QUEUE, RedisStore

LONGEST_READ_MS = 60_000


class _Job(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def done(self) -> bool: ...
    @property
    def queue(self) -> str: ...


J = TypeVar("J", bound=_Job)


class EndWatch:
    """The waiters of one client, and the readers (one a queue) that wake them."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._queue_of: dict[str, str] = {}  # the queue of each job waited for
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._starting = asyncio.Lock()  # one reader a queue, however many wait at once

    async def wait_until_ended(
        self, get: Callable[[str], Awaitable[J]], job_id: str, timeout: float | None
    ) -> J:
        """The job (as `get` reads it) once it has ended; ResultTimeout (a TimeoutError)
        after `timeout` seconds; what `get` raises for an id no job has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        queue: str | None = None
        while True:
            woken, watched = await self._register(job_id, queue)
            try:
                job = await get(job_id)
                if job.done:
                    return job
                if job.queue != watched:  # a job Redis did not hold (parked): its queue's
                    queue = job.queue
                    continue
                left = None if deadline is None else deadline - time.monotonic()
                try:
                    await asyncio.wait_for(woken, left)
                except TimeoutError:
                    raise ResultTimeout(job_id, job.state, timeout or 0.0) from None
            finally:
                await self._unregister(job_id, woken)

    async def close(self) -> None:
        for queue in list(self._readers):
            await self._stop_reader(queue)

    async def _register(self, job_id: str, queue: str | None) -> tuple[asyncio.Future[None], str]:
        """Wait for the job's end from its queue's reader: the queue named, or where
        Redis holds the job (the default queue's if it holds none; the caller reads
        the job and comes back with its queue if that was wrong)."""
        queue = queue or self._queue_of.get(job_id)
        if queue is None:
            queue = (await self.store.locate([job_id])).get(job_id, DEFAULT_QUEUE)
        async with self._starting:
            reader = self._readers.get(queue)
            if reader is None or reader.done():
                feed = Feed(self.store.queue(queue).on_own_connection(), named=False)
                try:
                    await feed.start_now()
                except BaseException:
                    await feed.store.close()
                    raise
                self._readers[queue] = asyncio.create_task(
                    self._read(feed), name=f"runner-end-watch:{queue}"
                )
        woken = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(woken)
        self._queue_of[job_id] = queue
        return woken, queue

    async def _unregister(self, job_id: str, woken: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id, set())
        waiters.discard(woken)
        if waiters:
            return
        self._waiters.pop(job_id, None)
        queue = self._queue_of.pop(job_id, DEFAULT_QUEUE)
        if queue not in self._queue_of.values():
            await self._stop_reader(queue)

    async def _read(self, feed: Feed) -> None:
        try:
            while True:
                for t in await feed.next_batch(block_ms=LONGEST_READ_MS):
                    if t.to_state in ENDED:
                        self._wake(t.job_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store failure: every waiter of the queue hears of it
            queue = feed.store.queue_name
            for job_id in [j for j, q in self._queue_of.items() if q == queue]:
                self._wake(job_id, exc)
        finally:
            await feed.store.close()

    def _wake(self, job_id: str, error: Exception | None) -> None:
        for woken in self._waiters.get(job_id, ()):
            if not woken.done():
                woken.set_result(None) if error is None else woken.set_exception(error)

    async def _stop_reader(self, queue: str) -> None:
        reader = self._readers.pop(queue, None)
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
