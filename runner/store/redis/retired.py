"""The retired ids in Redis: filling them from PostgreSQL's history once, trimming
them as that history ages out, and retiring parked ids. A base of RedisStore; what
the record is for is in runner/daemon/retired_ids.py, its format in lua/lib.lua."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from runner.states import RETIRED_STATES
from runner.store.failures import on_redis
from runner.store.redis.keys import Keys

assert len(RETIRED_STATES) < 8, "a score is ms * 8 + a state's code (1 to 7)"


def retired_score(at_ms: int, state: str) -> int:
    """The score of an id retired at `at_ms` in `state` (the same as lua/lib.lua's)."""
    return at_ms * 8 + [str(s) for s in RETIRED_STATES].index(state) + 1


class RetiredStore:
    redis: Redis
    keys: Keys

    @on_redis
    async def retire(self, jobs: Sequence[tuple[str, int, str]], only_new: bool = False) -> int:
        """Retire these ids, each (id, ms, state); with `only_new`, leave an id that is
        retired already, or that Redis holds as a job, as it is. How many were added."""
        if not jobs:
            return 0
        if only_new:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id, _, _ in jobs:
                    pipe.exists(self.keys.job(job_id))
                held = await pipe.execute()
            jobs = [job for job, live in zip(jobs, held, strict=True) if not live]
            if not jobs:
                return 0
        scores = {job_id: retired_score(at_ms, state) for job_id, at_ms, state in jobs}
        return int(await self.redis.zadd(self.keys.retired, scores, nx=only_new) or 0)

    @on_redis
    async def retired_filled(self) -> bool:
        return bool(await self.redis.exists(self.keys.retired_filled))

    @on_redis
    async def mark_retired_filled(self, now_ms: int) -> None:
        await self.redis.set(self.keys.retired_filled, now_ms)

    @on_redis
    async def trim_retired(self, before_ms: int) -> int:
        """Free the ids retired before `before_ms`: their history is no longer kept."""
        removed: int = await self.redis.zremrangebyscore(self.keys.retired, "-inf", before_ms * 8)
        return removed

    @on_redis
    async def retired_count(self) -> int:
        count: int = await self.redis.zcard(self.keys.retired)
        return count
