"""Several queues' transition streams, drained by one recorder as one.

On one server a recorder reads every queue's stream in one XREADGROUP and writes
what it read in one statement: a recorder per queue would make as many reads and
statements, each smaller, for the same events. On a Redis Cluster the streams are
in their queues' slots, on different nodes, and one read cannot name them all:
there each queue has a recorder of its own (a set of one stream).

Each entry carries its queue, so what is done with it (acknowledged, set aside,
its finished jobs forgotten) is done in its own queue's stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.store.failures import on_redis
from runner.store.redis.store import RedisStore
from runner.store.redis.stream import StreamEntry, _entries


class StreamSet:
    def __init__(self, store: RedisStore, queues: Sequence[str]) -> None:
        self.store = store
        self.queues = list(queues)

    def add(self, queue: str) -> None:
        if queue not in self.queues:
            self.queues.append(queue)

    def _view(self, queue: str) -> RedisStore:
        return self.store.queue(queue)

    async def ensure_event_group(self) -> None:
        for queue in self.queues:
            await self._view(queue).ensure_event_group()

    @on_redis
    async def read_events(
        self, consumer: str, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """New entries of every stream, in one read: up to `count` from each."""
        if len(self.queues) == 1:
            return await self._view(self.queues[0]).read_events(consumer, count, block_ms)
        keys = {self._view(q).keys.events: q for q in self.queues}
        reply: Any = await self.store.redis.xreadgroup(
            self.store.keys.recorder_group, consumer, dict.fromkeys(keys, ">"),
            count=count, block=block_ms,
        )  # fmt: skip
        return [entry for key, raw in reply or [] for entry in _entries(raw, keys[key])]

    async def claim_stale_events(
        self, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        found: list[StreamEntry] = []
        for queue in self.queues:
            found += await self._view(queue).claim_stale_events(consumer, min_idle_ms, count)
        return found

    async def ack_events(self, entries: Sequence[StreamEntry]) -> None:
        for queue, ids in _by_queue((e.queue, e.id) for e in entries).items():
            await self._view(queue).ack_events(list(dict.fromkeys(ids)))

    async def set_events_aside(self, entries: Sequence[tuple[StreamEntry, str]]) -> None:
        for queue in {entry.queue for entry, _ in entries}:
            mine = [(entry, why) for entry, why in entries if entry.queue == queue]
            await self._view(queue).set_events_aside(mine)

    async def forget_recorded(self, jobs: Sequence[tuple[str, int, str]], now_ms: int) -> None:
        """Give finished jobs (id, seq, queue) their expiry, each in its queue."""
        by_queue: dict[str, list[tuple[str, int]]] = {}
        for job_id, seq, queue in jobs:
            by_queue.setdefault(queue, []).append((job_id, seq))
        for queue, finished in by_queue.items():
            await self._view(queue).forget_recorded(finished, now_ms)

    async def trim_events(self, keep_ms: int, now_ms: int) -> None:
        for queue in self.queues:
            await self._view(queue).trim_events(keep_ms, now_ms)

    async def forget_consumer(self, consumer: str) -> None:
        for queue in self.queues:
            await self._view(queue).forget_consumer(consumer)


def _by_queue(pairs: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for queue, entry_id in pairs:
        found.setdefault(queue, []).append(entry_id)
    return found
