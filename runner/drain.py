"""Drain mode (`runner run --drain`): the daemon stops once no work is left anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runner.errors import StoreError
from runner.resilience import report
from runner.store.redis_store import RedisStore


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
                stop.set()
        except StoreError as exc:  # the service policy: log, go on
            report("drain", exc)
