"""The Redis verbs of one webhook sink (runner/notify/): its consumer group on the
transition stream, the lease that makes one daemon its deliverer, its dead letters
and the replay stream an operator sends them back through.

The sink's group is read like the recorders' (XREADGROUP, XACK, XAUTOCLAIM), so
what it has not acknowledged stays in the stream (see retention.py): delivery is at
least once. The replay stream has a group of the same name, read in the same call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.store.failures import on_redis
from runner.store.redis import retention
from runner.store.redis.keys import DEFAULT_QUEUE, Keys
from runner.store.redis.scripts import Scripts
from runner.store.redis.stream import StreamEntry, _entries

DEAD_KEPT = 100_000  # a sink's dead-letter stream is capped (approximately) at this
REPLAY_MOST = 100_000  # dead letters moved by one replay


class SinkEntries(NamedTuple):
    """What one read brought: transition stream entries, and replayed dead letters
    (their fields: event_id, job_id, seq, body)."""

    events: list[StreamEntry]
    replays: list[StreamEntry]


class DeadLetter(NamedTuple):
    id: str
    fields: dict[str, str]


@dataclass(frozen=True)
class SinkStore:
    redis: Redis
    keys: Keys
    scripts: Scripts
    sink: str

    @property
    def _group(self) -> str:
        return self.keys.notify_group(self.sink)

    @property
    def _replaying(self) -> bool:
        """The default queue's sink store reads the replay stream too: both are in the
        control slot (one XREADGROUP cannot cross slots)."""
        return self.keys.queue == DEFAULT_QUEUE

    @property
    def _streams(self) -> tuple[str, ...]:
        replay = (self.keys.notify_replay(self.sink),) if self._replaying else ()
        return (self.keys.events, *replay)

    @on_redis
    async def ensure_group(self, from_start: bool = False) -> bool:
        """The sink's groups: it starts with the transitions written from now on (a
        queue's stream that is new since the sink began, `from_start`: with all it
        holds); its replay stream from its start. Whether the stream's group is new."""
        created = []
        for stream, start in zip(self._streams, ("0" if from_start else "$", "0"), strict=False):
            try:
                await self.redis.xgroup_create(stream, self._group, id=start, mkstream=True)
                created.append(stream)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        return self.keys.events in created

    @on_redis
    async def destroy(self) -> None:
        """Forget a sink removed from the config: its group on this queue's stream
        (which would hold the stream for ever), and in the default queue's store its
        replay stream and lease. Its dead letters stay."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xgroup_destroy(self.keys.events, self._group)
            if self._replaying:
                pipe.delete(self.keys.notify_replay(self.sink), self.keys.notify_lease(self.sink))
            await pipe.execute(raise_on_error=False)

    @on_redis
    async def hold_lease(self, holder: str, ttl_ms: int) -> bool:
        """Take or renew the sink's lease; False while another daemon holds it."""
        reply = await self.scripts.notify_lease(
            keys=[self.keys.notify_lease(self.sink)], args=[holder, "hold", ttl_ms]
        )
        return bool(reply)

    @on_redis
    async def release_lease(self, holder: str) -> None:
        await self.scripts.notify_lease(
            keys=[self.keys.notify_lease(self.sink)], args=[holder, "release", 0]
        )

    @on_redis
    async def read(self, consumer: str, count: int, block_ms: int | None) -> SinkEntries:
        """New entries of the queue's transition stream (and the replay stream), in one
        call."""
        reply: Any = await self.redis.xreadgroup(
            self._group, consumer, dict.fromkeys(self._streams, ">"), count=count, block=block_ms
        )
        found = {stream: _entries(raw) for stream, raw in reply or []}
        replay = self.keys.notify_replay(self.sink)
        return SinkEntries(found.get(self.keys.events, []), found.get(replay, []))

    @on_redis
    async def take_pending(self, consumer: str, count: int) -> SinkEntries:
        """Every entry the sink's group holds unacknowledged, taken for `consumer` (the
        new holder, before it reads anything new): in stream order."""
        found: list[list[StreamEntry]] = []
        for stream in self._streams:
            taken: list[StreamEntry] = []
            cursor = "0-0"
            while True:
                reply: Any = await self.redis.xautoclaim(
                    stream, self._group, consumer, 0, cursor, count=count
                )
                taken += _entries(reply[1])
                cursor = str(reply[0])
                if cursor == "0-0":
                    break
            found.append(taken)
        return SinkEntries(found[0], found[1] if len(found) > 1 else [])

    @on_redis
    async def ack(self, event_ids: Sequence[str], replay_ids: Sequence[str]) -> None:
        """Acknowledge delivered (or dead-lettered) entries; replayed ones are deleted."""
        replay = self.keys.notify_replay(self.sink)
        async with self.redis.pipeline(transaction=False) as pipe:
            if event_ids:
                pipe.xack(self.keys.events, self._group, *event_ids)
            if replay_ids:
                pipe.xack(replay, self._group, *replay_ids)
                pipe.xdel(replay, *replay_ids)
            await pipe.execute()

    @on_redis
    async def dead_letter(self, letters: Sequence[Mapping[str, str]]) -> None:
        """Keep deliveries that failed for the sink's whole retry budget."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in letters:
                pipe.xadd(
                    self.keys.notify_dead(self.sink), dict(fields),  # type: ignore[arg-type]
                    maxlen=DEAD_KEPT, approximate=True,
                )  # fmt: skip
            await pipe.execute()

    @on_redis
    async def replay(self, event_id: str | None) -> int:
        """Send dead letters again (the one of `event_id`, or all): how many."""
        moved = await self.scripts.notify_replay(
            keys=[self.keys.notify_dead(self.sink), self.keys.notify_replay(self.sink)],
            args=[event_id or "", REPLAY_MOST],
        )
        return int(moved)

    @on_redis
    async def dead_letters(self, count: int) -> list[DeadLetter]:
        """The newest dead letters, newest first."""
        raw: Any = await self.redis.xrevrange(self.keys.notify_dead(self.sink), count=count)
        return [DeadLetter(str(entry_id), dict(fields)) for entry_id, fields in raw]

    @on_redis
    async def summary(self) -> dict[str, Any]:
        """What `runner status` tells of the sink: dead letters, replays waiting, the
        entries it has not acknowledged yet, and who delivers."""
        events, replay = self.keys.events, self.keys.notify_replay(self.sink)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.keys.notify_dead(self.sink))
            pipe.xlen(replay)
            pipe.get(self.keys.notify_lease(self.sink))
            dead, replays, holder = await pipe.execute()
        groups = {g.name: g for g in await retention.group_states(self.redis, events)}
        backlog = None
        if self._group in groups:
            owed = await retention.backlog(self.redis, events, self._group)
            backlog = {"entries": owed.entries, "oldest_id": owed.oldest_id}
        return {"dead": int(dead), "replaying": int(replays), "holder": holder,
                "backlog": backlog}  # fmt: skip
