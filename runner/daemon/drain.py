"""Drain mode (`runner run --drain`): the daemon stops once no work it could run is
left anywhere.

Work left is a job waiting in the schedule (at any due time) or running on any
daemon. Jobs that wait for an operator's resume are not: the due jobs a paused
task holds and the jobs paused one by one would keep a drain running until
someone resumes them, so it stops without them and says so, in one warning that
counts them and names the commands that let them run. In maintenance mode
(`runner pause --all`) due jobs stay in the schedule, so a drain waits for
`runner resume --all` like any daemon.

The jobs paused one by one are counted in the history once the shutdown has
written the last transitions (an index read: what `runner jobs --state paused`
lists), not by walking every job hash in Redis: that walk grows with every job
Redis keeps, finished ones included (a third of a second for 20,000 of them), and a
drain's end is when a batch run is waited for. When the history is not up to date
(the last transitions could not be written in time) or cannot answer in time, the
walk counts them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from runner.daemon.resilience import report
from runner.errors import StoreError
from runner.logs import get_logger
from runner.store import PgStore, RedisStore

log = get_logger()


class Drain:
    def __init__(
        self, store: RedisStore, busy_here: Callable[[], bool], stop: asyncio.Event
    ) -> None:
        self.store = store
        self.busy_here = busy_here
        self.stop = stop
        self.held: dict[str, int] | None = None  # per paused task, once drained

    async def run(self) -> None:
        """Set `stop` once this daemon runs nothing and no job is waiting or running in
        Redis (the shutdown then records what is left in the stream)."""
        while not self.stop.is_set():
            await asyncio.sleep(0.01)
            if self.busy_here():
                continue
            try:
                if await self.store.outstanding() == 0:
                    self.held = await self.store.held_by_paused_tasks()
                    self.stop.set()
            except StoreError as exc:  # the service policy: log, go on
                report("drain", exc)

    async def say_what_waits(self, history: PgStore, recorded: bool, bound_s: float) -> None:
        """After the shutdown, the drain's last line. `recorded`: every transition
        reached the history, which then counts the jobs paused one by one; else, or
        if it cannot answer within `bound_s`, Redis does. Neither holds the exit
        longer than that: nothing waits on the count."""
        if self.held is None:  # stopped by a signal before it drained
            return
        paused = None
        if recorded:
            paused = await _within(history.paused_count(), bound_s, "PostgreSQL")
        if paused is None:
            paused = await _within(self._paused_in_redis(), bound_s, "Redis")
        if paused is None:
            log.warning("drained; the jobs paused one by one could not be counted",
                        held=self.held)  # fmt: skip
            return
        _say_what_waits(self.held, paused)

    async def _paused_in_redis(self) -> int:
        return (await self.store.waiting_for_resume()).paused_jobs


async def _within(count: Awaitable[int], bound_s: float, where: str) -> int | None:
    """The count, or None if its store failed or took longer than `bound_s`."""
    try:
        async with asyncio.timeout(bound_s):
            return await count
    except StoreError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"no answer within {bound_s:g}s"
    log.warning(f"drain: the jobs paused one by one could not be counted in {where}",
                error=error)  # fmt: skip
    return None


def _say_what_waits(held: dict[str, int], paused_jobs: int) -> None:
    if not held and not paused_jobs:
        log.info("drained; no work left")
        return
    hints = [f"runner resume --task {task}" for task in held]
    if paused_jobs:
        hints.append("runner resume ID (runner jobs --state paused lists them)")
    log.warning(
        "drained; jobs left waiting for a resume",
        held=held,
        paused_jobs=paused_jobs,
        hint="; ".join(hints),
    )
