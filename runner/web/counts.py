"""Jobs per task and state for GET /api/status, without a full count on every poll.

Counting runner_jobs reads the whole table: about 0.3 s at a million jobs, and
the dashboard asks every few seconds. So the counts are kept, and refreshed in
the background once they are older than DUTY times what the last count took:
the counting uses at most ~1/DUTY of one Postgres backend per web process,
answers stay as fast at a million jobs as at ten, a small table is counted
afresh on nearly every request, and a server nobody reads counts nothing.
Only the first request waits for a count; the document says when it was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from runner.logs import get_logger

log = get_logger()
Counts = dict[str, dict[str, int]]
DUTY = 30  # counts stay fresh for DUTY times as long as counting them took
MAX_AGE = 30.0  # seconds, however slow the count


class TaskCounts:
    def __init__(
        self,
        count: Callable[[], Awaitable[Counts]],
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._counts: Counts | None = None
        self._counted_at = 0.0  # wall-clock seconds, for the document
        self._taken = 0.0  # monotonic seconds, for the age
        self._fresh_for = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def get(self) -> tuple[Counts, float]:
        """(counts, when they were taken in seconds since the epoch). The first call
        waits for a count (and raises its error); later ones get the last counts and
        start a refresh in the background when those are stale."""
        if self._counts is None:
            await self._start()
        elif self._monotonic() - self._taken > self._fresh_for and self._refresh is None:
            self._refresh = asyncio.create_task(self._update(), name="task counts")
            self._refresh.add_done_callback(self._refreshed)
        assert self._counts is not None
        return self._counts, self._counted_at

    async def _start(self) -> None:
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._update(), name="task counts")
        try:
            await asyncio.shield(self._refresh)
        finally:
            if self._refresh.done():
                self._refresh = None

    async def _update(self) -> None:
        started, counted_at = self._monotonic(), self._wall_clock()
        counts = await self._count()
        took = self._monotonic() - started
        self._counts, self._counted_at, self._taken = counts, counted_at, started
        self._fresh_for = min(MAX_AGE, DUTY * took)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        """A background refresh that failed leaves the last counts in place, logged;
        the next request past their age tries again."""
        self._refresh = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("cannot refresh the job counts", error=str(task.exception()))

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
