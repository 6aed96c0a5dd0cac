"""The transition stream keeps recorded entries for `[events] keep`, and never drops
one that a consumer group has not acknowledged, however old."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.store.redis.test_scripts import NOW, new_job

OTHER_GROUP = "notify:audit"


async def _enqueue(store: RedisStore, count: int) -> None:
    for n in range(count):
        await store.enqueue(new_job(f"j{n}-{time.monotonic_ns()}"), "client", NOW)


async def _read_all(store: RedisStore, group: str | None = None) -> list[str]:
    if group is None:
        return [e.id for e in await store.read_events("c1", 1000, None)]
    reply: Any = await store.redis.xreadgroup(group, "c1", {store.keys.events: ">"}, count=1000)
    return [entry_id for entry_id, _ in reply[0][1]] if reply else []


async def test_recorded_entries_stay_until_their_keep_time_has_passed(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """Acknowledging no longer deletes: a feed may still read the entries. Trimming
    with a keep time still ahead leaves them; once it has passed, they go."""
    await store.ensure_event_group()
    await _enqueue(store, 3)
    await store.ack_events(await _read_all(store))
    assert await redis.xlen(keys.events) == 3
    await store.trim_events(keep_ms=60_000, now_ms=int(time.time() * 1000))
    assert await redis.xlen(keys.events) == 3
    await store.trim_events(keep_ms=0, now_ms=int(time.time() * 1000) + 1)
    assert await redis.xlen(keys.events) == 0
    assert (await store.recorder_backlog()).entries == 0


async def test_entries_a_recorder_has_not_acknowledged_are_never_trimmed(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """Read but unacknowledged (pending), or not read at all: both stay, however old,
    and the backlog counts them with the oldest one's id."""
    await store.ensure_event_group()
    await _enqueue(store, 2)
    read = await _read_all(store)  # pending
    await _enqueue(store, 3)  # not read
    later = int(time.time() * 1000) + 3_600_000
    await store.trim_events(keep_ms=0, now_ms=later)
    assert await redis.xlen(keys.events) == 5
    backlog = await store.recorder_backlog()
    assert (backlog.entries, backlog.pending, backlog.oldest_id) == (5, 2, read[0])
    await store.ack_events(read)
    await store.trim_events(keep_ms=0, now_ms=later)
    assert await redis.xlen(keys.events) == 3
    backlog = await store.recorder_backlog()
    assert (backlog.entries, backlog.pending) == (3, 0)


async def test_another_groups_unacknowledged_entries_hold_the_stream(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A second reader (a webhook sink's group) that has not acknowledged an entry
    keeps it, and everything after it, in the stream after the recorders are done."""
    await store.ensure_event_group()
    await redis.xgroup_create(keys.events, OTHER_GROUP, id="0")
    await _enqueue(store, 4)
    await store.ack_events(await _read_all(store))
    other = await _read_all(store, OTHER_GROUP)
    await redis.xack(keys.events, OTHER_GROUP, *other[:2])
    later = int(time.time() * 1000) + 3_600_000
    await store.trim_events(keep_ms=0, now_ms=later)
    kept: Any = await redis.xrange(keys.events)
    assert [entry_id for entry_id, _ in kept] == other[2:]
    await redis.xack(keys.events, OTHER_GROUP, *other[2:])
    await store.trim_events(keep_ms=0, now_ms=later)
    assert await redis.xlen(keys.events) == 0


async def test_the_backlog_of_a_stream_without_a_group_is_every_entry(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """Before any recorder made its group, nothing was recorded: every entry is owed,
    and trimming drops nothing (no group has acknowledged anything)."""
    await _enqueue(store, 2)
    assert (await store.recorder_backlog()).entries == 2
    await store.trim_events(keep_ms=0, now_ms=int(time.time() * 1000) + 3_600_000)
    assert await redis.xlen(keys.events) == 2
