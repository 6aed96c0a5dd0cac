"""What a concurrency cap or a rate limit holds back, as operators see it (the limits
themselves are kept by the scripts: lua/lib.lua, claim.lua, finish.lua, reap.lua,
cancel.lua)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from runner.store.failures import on_redis
from runner.store.redis.keys import Keys


class CapStore:
    redis: Redis
    keys: Keys

    if TYPE_CHECKING:

        def queue(self, name: str) -> CapStore: ...  # RedisStore's

    @on_redis
    async def cap_wait(self, queue: str, group: str, job_id: str) -> int | None:
        """How many jobs of the group run now, if this job waits for one of its
        slots; None if it does not wait for one."""
        keys = self.queue(queue).keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(f"{keys.due_prefix}capped:{group}", job_id)
            pipe.zcard(f"{keys.due_prefix}slots:{group}")
            waiting, running = await pipe.execute()
        return None if waiting is None else int(running)

    @on_redis
    async def rate_wait(self, queue: str, group: str, job_id: str) -> int | None:
        """When the group's rate next allows a start (ms), if this job waits for it;
        None if it does not wait for its rate."""
        keys = self.queue(queue).keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(f"{keys.due_prefix}rated:{group}", job_id)
            pipe.zscore(f"{keys.due_prefix}ratewake", group)
            waiting, wake = await pipe.execute()
        return None if waiting is None or wake is None else int(wake)
