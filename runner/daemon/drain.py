"""Drain mode (`runner run --drain`): the daemon stops once no work it could run is
left anywhere.

Work left is a job waiting in the schedule (at any due time) or running on any
daemon. Jobs that wait for an operator's resume are not: the due jobs a paused
task holds and the jobs paused one by one would keep a drain running until
someone resumes them, so it stops without them and says so, in one warning that
counts them and names the commands that let them run. In maintenance mode
(`runner pause --all`) due jobs stay in the schedule, so a drain waits for
`runner resume --all` like any daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runner.daemon.resilience import report
from runner.errors import StoreError
from runner.logs import get_logger
from runner.store import RedisStore, WaitingForResume

log = get_logger()


async def stop_when_drained(
    store: RedisStore, busy_here: Callable[[], bool], stop: asyncio.Event
) -> None:
    """Set `stop` once this daemon runs nothing and no job is waiting or running in
    Redis (the shutdown then records what is left in the stream)."""
    while not stop.is_set():
        await asyncio.sleep(0.01)
        if busy_here():
            continue
        try:
            if await store.outstanding() == 0:
                _say_what_waits(await store.waiting_for_resume())
                stop.set()
        except StoreError as exc:  # the service policy: log, go on
            report("drain", exc)


def _say_what_waits(waiting: WaitingForResume) -> None:
    if not waiting:
        log.info("drained; no work left")
        return
    hints = [f"runner resume --task {task}" for task in waiting.held]
    if waiting.paused_jobs:
        hints.append("runner resume ID (runner jobs --state paused lists them)")
    log.warning(
        "drained; jobs left waiting for a resume",
        held=waiting.held,
        paused_jobs=waiting.paused_jobs,
        hint="; ".join(hints),
    )
