"""systemd watchdog and status: WATCHDOG=1 while the loop is healthy, STATUS= with counts.

The watchdog ping is a task on the daemon's own event loop: if the loop is
blocked, the pings stop and systemd's watchdog fires, which is the point.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from runner.systemd import notify

STATUS_EVERY_S = 2.0


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC, if systemd asked this very process for pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


def reloading() -> None:
    monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")


async def run_notifier(status: Callable[[], Awaitable[str]]) -> None:
    """Ping the watchdog at half its interval and refresh STATUS= every few seconds."""
    interval = watchdog_interval()
    tick = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
    next_status = 0.0
    while True:
        if interval:
            notify("WATCHDOG=1")
        if time.monotonic() >= next_status:
            notify(f"STATUS={await status_or_reason(status)}")
            next_status = time.monotonic() + STATUS_EVERY_S
        await asyncio.sleep(tick)


async def status_or_reason(status: Callable[[], Awaitable[str]]) -> str:
    try:
        async with asyncio.timeout(1.0):
            return await status()
    except Exception as exc:  # a status line must never stop the watchdog
        return f"status unavailable: {type(exc).__name__}: {exc}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def paused_note(paused: Iterable[str], maintenance: bool) -> str:
    """The STATUS line's paused tasks and maintenance mode: short, and with no control
    character, since a task name comes from Redis and a newline in it would add a
    field of its own to the sd_notify message."""
    tasks = [_CONTROL.sub("?", name)[:40] for name in sorted(paused)]
    note = ""
    if tasks:
        more = f" and {len(tasks) - 5} more" if len(tasks) > 5 else ""
        note += f"; paused: {', '.join(tasks[:5])}{more}"
    if maintenance:
        note += "; MAINTENANCE (nothing is claimed)"
    return note
