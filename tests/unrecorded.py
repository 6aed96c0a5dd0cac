"""What the recorders still owe Postgres, as tests ask it: the transition stream keeps
recorded entries for `[events] keep`, so its length no longer says that."""

from __future__ import annotations

from redis.asyncio import Redis

from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore


async def unrecorded(redis: Redis, keys: Keys) -> int:
    """Entries no recorder has acknowledged: read and pending, or not read yet."""
    return (await RedisStore(redis, keys).recorder_backlog()).entries
