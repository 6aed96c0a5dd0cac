"""A source reads only while runner keeps up: past `max_backlog` due jobs of the kind its
task runs in (every kind, for a source whose messages name their task), it stops,
says so (status, metrics, one log line), and resumes once the backlog fell below.

Due jobs are counted per kind (the schedule's due sets), so the bound is on the
pool the source's jobs wait for, whichever task fills it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from runner.clock import Clock
from runner.config.settings import Settings
from runner.config.sources import SourceSettings
from runner.logs import get_logger
from runner.sources.metrics import SourceMetrics
from runner.store import RedisStore, note_held

log = get_logger()

RECHECK_S = 0.25  # while held: how often the backlog is read again


class Backpressure:
    def __init__(
        self,
        store: RedisStore,
        source: SourceSettings,
        settings: Callable[[], Settings],
        clock: Clock,
        metrics: SourceMetrics | None,
    ) -> None:
        self.store = store
        self.source = source
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.held = False

    async def backlog(self) -> int:
        """Due jobs now of the kind the source's task runs in (all kinds without one)."""
        due = await self.store.due_counts(self.clock.now_ms())
        task = self.settings().tasks.get(self.source.task or "")
        return due.get(task.kind, 0) if task is not None else sum(due.values())

    async def wait_below(
        self, stopping: Callable[[], bool], before_holding: Callable[[], Awaitable[None]]
    ) -> None:
        """Return once the backlog is within the bound (at once without one), or when
        the source is stopping; `before_holding` runs once before reading is held."""
        bound = self.source.max_backlog
        if bound is None:
            return
        while not stopping():
            backlog = await self.backlog()
            if backlog <= bound:
                break
            if not self.held:
                await before_holding()
            await self._hold(backlog, bound)
            await asyncio.sleep(RECHECK_S)
        if self.held:
            await self._resume()

    async def _hold(self, backlog: int, bound: int) -> None:
        if not self.held:
            log.warning(
                "source held back: runner's due backlog is over its bound",
                source=self.source.name, backlog=backlog, max_backlog=bound,
            )  # fmt: skip
        self.held = True
        if self.metrics is not None:
            self.metrics.held(self.source.name, True)
        await note_held(self.store, self.source.name, self.clock.now_ms(), backlog, bound)

    async def _resume(self) -> None:
        log.info("source resumed: the backlog fell below its bound", source=self.source.name)
        self.held = False
        if self.metrics is not None:
            self.metrics.held(self.source.name, False)
        await note_held(self.store, self.source.name, self.clock.now_ms(), None, None)
