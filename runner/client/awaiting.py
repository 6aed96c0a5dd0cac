"""Waiting for jobs to end, woken by the transition stream rather than by polling.

A client may wait for thousands of jobs at once (a web handler awaiting each
request's job): one reader per client follows the stream for all of them, on a
Redis connection of its own, blocked in Redis (XREAD, at most a minute at a time)
until something is written, and wakes the waiters of each job that ended. It runs
only while someone waits: the last waiter to leave stops it and closes its
connection, so a client at rest holds nothing open.

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
from runner.store import RedisStore

LONGEST_READ_MS = 60_000


class _Job(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def done(self) -> bool: ...


J = TypeVar("J", bound=_Job)


class EndWatch:
    """The waiters of one client, and the one reader that wakes them."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()  # one reader, however many wait at once

    async def wait_until_ended(
        self, get: Callable[[str], Awaitable[J]], job_id: str, timeout: float | None
    ) -> J:
        """The job (as `get` reads it) once it has ended; ResultTimeout (a TimeoutError)
        after `timeout` seconds; what `get` raises for an id no job has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            woken = await self._register(job_id)
            try:
                job = await get(job_id)
                if job.done:
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                try:
                    await asyncio.wait_for(woken, left)
                except TimeoutError:
                    raise ResultTimeout(job_id, job.state, timeout or 0.0) from None
            finally:
                await self._unregister(job_id, woken)

    async def close(self) -> None:
        await self._stop_reader()

    async def _register(self, job_id: str) -> asyncio.Future[None]:
        async with self._starting:
            if self._reader is None or self._reader.done():
                feed = Feed(self.store.on_own_connection(), named=False)
                try:
                    await feed.start_now()
                except BaseException:
                    await feed.store.close()
                    raise
                self._reader = asyncio.create_task(self._read(feed), name="runner-end-watch")
        woken = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(woken)
        return woken

    async def _unregister(self, job_id: str, woken: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id, set())
        waiters.discard(woken)
        if not waiters:
            self._waiters.pop(job_id, None)
        if not self._waiters:
            await self._stop_reader()

    async def _read(self, feed: Feed) -> None:
        try:
            while True:
                for t in await feed.next_batch(block_ms=LONGEST_READ_MS):
                    if t.to_state in ENDED:
                        self._wake(t.job_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store failure: every waiter hears of it
            for job_id in list(self._waiters):
                self._wake(job_id, exc)
        finally:
            await feed.store.close()

    def _wake(self, job_id: str, error: Exception | None) -> None:
        for woken in self._waiters.get(job_id, ()):
            if not woken.done():
                woken.set_result(None) if error is None else woken.set_exception(error)

    async def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
