"""The lead: claim a delayed job a moment before it is due, start it at its due time.

A claim is a round trip to Redis, and whatever the loop is doing when the reply
lands. Asked for at the due time, that is how late every delayed job starts. So
the pump asks that long ahead (the lead), and the job, claimed with a slot
reserved for it and its lease held like any running job's, waits on the loop until
its due time, to the microsecond. A daemon that dies while holding one loses
nothing: its lease expires and another daemon runs it, as for a job that had
started. A held job is cancelled, paused or given back like a running one.

The lead is never more than 5 ms (the design's bound: no daemon holds work it
could not start now). By default it follows the claims this daemon measures: twice
the slowest of the recent round trips, at least 1 ms.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from runner.clock import Clock
from runner.config.values import MAX_LEAD_S
from runner.daemon.executors import Executor
from runner.jobs import ClaimedJob

RECENT_CLAIMS = 64  # the round trips the measured lead follows
FLOOR_S = 0.001  # a measured lead is never less: one slow scheduling step


class Lead:
    """How far ahead of a due time the pump claims: configured, or measured."""

    def __init__(self, configured: float | None) -> None:
        self.configured = configured
        self._trips: deque[float] = deque(maxlen=RECENT_CLAIMS)

    def configure(self, configured: float | None) -> None:
        self.configured = configured

    def note(self, seconds: float) -> None:
        """One claim's round trip, as the pump timed it."""
        self._trips.append(seconds)

    @property
    def seconds(self) -> float:
        if self.configured is not None:
            return self.configured
        slowest = max(self._trips, default=0.0)
        return min(MAX_LEAD_S, max(FLOOR_S, 2 * slowest))

    @property
    def ms(self) -> float:
        return self.seconds * 1000


async def hold_until(due_ms: float, clock: Clock, spin: float) -> None:
    """Return at `due_ms` (wall ms, with microseconds), never before.

    The loop's timers are coarse (a millisecond, and a sleeping host wakes late), so
    the hold sleeps until `spin` seconds before (`[daemon] timer_spin`, as the pump's
    own sleep) and yields to the loop for the rest: every other task keeps running
    meanwhile, and the job starts within one loop step of its due time.
    """
    due = due_ms / 1000
    left = due - clock.now()
    if left > spin:
        await asyncio.sleep(left - spin)
    while clock.now() < due:  # noqa: ASYNC110  # the spin, on purpose
        await asyncio.sleep(0)


async def start_when_due(
    job: ClaimedJob,
    slot: Executor,
    begin: Callable[[ClaimedJob, Executor], None],
    clock: Clock,
    spin: float,
) -> None:
    """A held job's task: its slot (acquired at claim) and its lease are kept while it
    waits, and `begin` starts its attempt at its due time exactly, as a task of its own
    (the one a cancel stops from then on; awaited from here, a GeneratorExit its body
    raised would pass through the extra frame). Cancelled meanwhile (by request, or at
    shutdown), it gives its slot back and never starts."""
    try:
        await hold_until(job.due_at_ms, clock, spin)
    except asyncio.CancelledError:
        slot.release()
        raise
    begin(job, slot)
