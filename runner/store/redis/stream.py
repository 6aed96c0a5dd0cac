"""The transition stream, drained by the recorders through one consumer group.

Every script appends its transitions here; each daemon's recorder reads them,
acknowledges what Postgres committed, takes over what a dead daemon left
unacknowledged, and moves aside what Postgres cannot take. Entries stay for the
stream's other readers until trimmed (retention.py). A base of RedisStore: the
verbs are the store's, kept in a module of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.store.failures import on_redis
from runner.store.redis import retention
from runner.store.redis.connect import is_cluster
from runner.store.redis.keys import Keys
from runner.store.redis.retention import Backlog

DEAD_EVENTS_KEPT = 100_000  # the dead-letter stream is capped (approximately) at this
CLUSTER_POLL_MS = 100  # a feed over several queues on a cluster reads them this often


class StreamEntry(NamedTuple):
    """One entry of the transition stream: its id, and its events as one JSON array
    text, or None when the entry is not what runner's scripts write (no `e` field);
    and the queue whose stream it is in."""

    id: str
    payload: str | None
    fields: dict[str, str]
    queue: str = "default"
    events: int = -1  # the events in `payload`, once a reader counted them; -1: not yet


class EventStream:
    redis: Redis
    keys: Keys

    @on_redis
    async def ensure_event_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.keys.events, self.keys.recorder_group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @on_redis
    async def read_events(
        self, consumer: str, count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        reply: Any = await self.redis.xreadgroup(
            self.keys.recorder_group,
            consumer,
            {self.keys.events: ">"},
            count=count,
            block=block_ms,
        )
        return [] if not reply else _entries(reply[0][1], self.keys.queue)

    @on_redis
    async def claim_stale_events(
        self, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over entries another consumer read but never acknowledged (it died)."""
        reply = await self.redis.xautoclaim(
            self.keys.events, self.keys.recorder_group, consumer, min_idle_ms, "0-0", count=count
        )
        return _entries(reply[1], self.keys.queue)

    @on_redis
    async def ack_events(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge recorded entries. They stay in the stream for its other readers
        until trim_events drops them (see retention.py)."""
        if entry_ids:
            await self.redis.xack(self.keys.events, self.keys.recorder_group, *entry_ids)

    @on_redis
    async def trim_events(self, keep_ms: int, now_ms: int) -> None:
        """Drop entries older than `keep_ms` that every consumer group acknowledged."""
        await retention.trim(self.redis, self.keys.events, keep_ms, now_ms)

    @on_redis
    async def recorder_backlog(self) -> Backlog:
        """The entries no recorder has acknowledged yet: the history not in Postgres."""
        return await retention.backlog(self.redis, self.keys.events, self.keys.recorder_group)

    @on_redis
    async def set_events_aside(self, entries: Sequence[tuple[StreamEntry, str]]) -> None:
        """Move entries the recorder cannot write to the dead-letter stream, each with
        its reason and original id, then acknowledge them: kept for an operator,
        never blocking the stream again. (Copied first: a crash in between leaves a
        duplicate in the dead-letter stream, never a loss.)"""
        if not entries:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry, reason in entries:
                fields: dict[Any, Any] = {**entry.fields, "reason": reason, "entry_id": entry.id}
                pipe.xadd(self.keys.dead_events, fields, maxlen=DEAD_EVENTS_KEPT, approximate=True)
            await pipe.execute()
        await self.ack_events([entry.id for entry, _ in entries])

    @on_redis
    async def read_streams_after(
        self, after: Mapping[str, str], count: int, block_ms: int | None
    ) -> list[StreamEntry]:
        """Entries of several queues' streams, each after its own id (queue -> entry
        id), without a group. On one server one XREAD over them all, blocking up to
        `block_ms`; on a Redis Cluster, where one read cannot span slots, a read of
        each, again every CLUSTER_POLL_MS until one brings something or the time is up."""
        keys = {self.keys.of_queue(q).events: q for q in after}
        ids: dict[Any, Any] = {key: after[q] for key, q in keys.items()}
        if not is_cluster(self.redis) or len(ids) == 1:
            reply: Any = await self.redis.xread(ids, count, block_ms)
            return [e for key, raw in reply or [] for e in _entries(raw, keys[key])]
        waited = 0
        while True:
            found: list[StreamEntry] = []
            for key, entry_id in ids.items():
                reply = await self.redis.xread({key: entry_id}, count)
                found += [e for _, raw in reply or [] for e in _entries(raw, keys[key])]
            if found or not block_ms or waited >= block_ms:
                return found
            await asyncio.sleep(CLUSTER_POLL_MS / 1000)
            waited += CLUSTER_POLL_MS

    @on_redis
    async def stream_entries(self, first_id: str, count: int) -> list[StreamEntry]:
        """Entries from `first_id` on, that one included (a feed resuming in an entry)."""
        reply = await self.redis.xrange(self.keys.events, first_id, "+", count=count)
        return _entries(reply, self.keys.queue)

    @on_redis
    async def stream_ends(self) -> tuple[str, str]:
        """The ids of the stream's first and last entries ("0-0" for an empty stream):
        a feed starting now reads after the last; one resuming before the first may
        have missed trimmed entries."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(self.keys.events, count=1)
            pipe.xrevrange(self.keys.events, count=1)
            first, last = await pipe.execute()
        return (first[0][0] if first else "0-0", last[0][0] if last else "0-0")

    @on_redis
    async def dead_letter_counts(self) -> dict[str, int]:
        """How many jobs and stream entries were set aside as malformed."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.dead)
            pipe.xlen(self.keys.dead_events)  # 0 while the stream does not exist
            jobs, events = await pipe.execute()
        return {"jobs": jobs, "events": events}

    @on_redis
    async def forget_consumer(self, consumer: str) -> None:
        """Drop this daemon's consumer from the group, only if it has nothing pending
        (deleting a consumer drops its pending entries, which must be recorded)."""
        pending = await self.redis.xpending_range(
            self.keys.events, self.keys.recorder_group, "-", "+", 1, consumername=consumer
        )
        if not pending:
            await self.redis.xgroup_delconsumer(
                self.keys.events, self.keys.recorder_group, consumer
            )


def _entries(raw: Any, queue: str = "default") -> list[StreamEntry]:
    """Stream entries; "[]" for one deleted while pending, None for one without `e`."""
    return [
        StreamEntry(entry_id, fields.get("e") if fields else "[]", fields or {}, queue)
        for entry_id, fields in raw
    ]
