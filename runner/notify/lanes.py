"""Delivery order: each job's deliveries one after another in seq order, different
jobs side by side; and which stream entries are done with.

A job's next transition waits for its previous one to be delivered or
dead-lettered, so a receiver sees each job's events in seq order even when some
fail and are retried. A stream entry (one Lua call: many jobs' transitions) is
acknowledged only once every delivery it holds is done, so a crash before that
sends them again: at least once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from runner.notify.delivery import Delivery

Entry = tuple[str, str]  # (the stream: a queue's name, or REPLAY; entry id)
REPLAY = ":replay"  # the sink's replay stream (a queue name never starts with ':')


class Acks:
    """The entries taken in, and how many of their deliveries are still owed."""

    def __init__(self) -> None:
        self._owed: dict[Entry, int] = {}
        self._done: list[Entry] = []
        self.ready = asyncio.Event()

    def taken(self, entry: Entry, deliveries: int) -> None:
        if deliveries:
            self._owed[entry] = self._owed.get(entry, 0) + deliveries
        elif entry not in self._owed:
            self._finished(entry)

    def delivered(self, entry: Entry) -> None:
        self._owed[entry] -= 1
        if not self._owed[entry]:
            del self._owed[entry]
            self._finished(entry)

    def _finished(self, entry: Entry) -> None:
        self._done.append(entry)
        self.ready.set()

    def take(self) -> dict[str, list[str]]:
        """The entries done since the last take, by stream."""
        done, self._done = self._done, []
        self.ready.clear()
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in done:
            by_stream.setdefault(stream, []).append(entry_id)
        return by_stream

    def give_back(self, done: dict[str, list[str]]) -> None:
        """Entries whose acknowledgement failed: acknowledged with the next ones."""
        self._done += [(stream, i) for stream, ids in done.items() for i in ids]
        if self._done:
            self.ready.set()


class Lanes:
    """One lane per job with deliveries waiting; each lane a task of `group`."""

    def __init__(
        self,
        group: asyncio.TaskGroup,
        deliver: Callable[[Delivery], Awaitable[object]],
        acks: Acks,
        window: int,
    ) -> None:
        self.group = group
        self.deliver = deliver
        self.acks = acks
        self.window = window
        self._lanes: dict[str, deque[Delivery]] = {}
        self.outstanding = 0
        self.room = asyncio.Event()
        self.room.set()

    def add(self, delivery: Delivery) -> None:
        self.outstanding += 1
        if self.outstanding >= self.window:
            self.room.clear()
        lane = self._lanes.get(delivery.job_id)
        if lane is not None:
            lane.append(delivery)
            return
        self._lanes[delivery.job_id] = deque([delivery])
        self.group.create_task(self._drain(delivery.job_id), name=f"lane {delivery.job_id}")

    async def _drain(self, job_id: str) -> None:
        lane = self._lanes[job_id]
        while lane:
            delivery = lane[0]
            await self.deliver(delivery)
            lane.popleft()
            self.outstanding -= 1
            if self.outstanding < self.window:
                self.room.set()
            self.acks.delivered(delivery.entry)
        del self._lanes[job_id]
