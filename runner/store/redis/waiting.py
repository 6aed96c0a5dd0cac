"""What waits for an operator's resume: the due jobs a paused task holds, and the
jobs paused one by one. A drain (`runner run --drain`) says what it leaves behind.

The held jobs are counted per paused task (a ZCARD each). Jobs paused one by one
are found in their hashes alone (no set lists them), so counting them here walks
every job hash of the prefix, a thousand per round trip: a drain counts them in
the history instead (an index read, once its last transitions are written), and
walks only when PostgreSQL cannot answer. A key that is not a job hash is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis

from runner.states import State
from runner.store.redis.fields import stored
from runner.store.redis.keys import ALL_TASKS, Keys

_GLOB = re.compile(r"([*?\[\]\\])")
_CHUNK = 1000


@dataclass(frozen=True)
class WaitingForResume:
    held: dict[str, int]  # paused task -> its due jobs held, for the tasks that hold any
    paused_jobs: int  # jobs paused one by one

    def __bool__(self) -> bool:
        return bool(self.held) or self.paused_jobs > 0


async def read_waiting_for_resume(redis: Redis, keys: Keys, queues: list[str]) -> WaitingForResume:
    """The held jobs of every queue, and the jobs paused one by one, found in one walk
    over the job hashes of every queue (one SCAN pattern matches them all)."""
    return WaitingForResume(await read_held(redis, keys, queues), await _paused_jobs(redis, keys))


async def read_held(redis: Redis, keys: Keys, queues: list[str]) -> dict[str, int]:
    """Per paused task, its due jobs held in every queue (the tasks holding any)."""
    held: dict[str, int] = {}
    for queue in queues:
        for task, count in (await _held(redis, keys.of_queue(queue))).items():
            held[task] = held.get(task, 0) + count
    return held


async def _held(redis: Redis, keys: Keys) -> dict[str, int]:
    names: list[str] = await redis.hkeys(keys.paused)  # type: ignore[assignment]  # decode_responses=True
    tasks = sorted(task for task in names if task != ALL_TASKS)
    if not tasks:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for task in tasks:
            pipe.zcard(keys.held(task))
        counts = await pipe.execute(raise_on_error=False)
    return {
        task: count
        for task, count in zip(tasks, counts, strict=True)
        if isinstance(count, int) and count > 0
    }


async def _paused_jobs(redis: Redis, keys: Keys) -> int:
    """Jobs paused one by one in any queue: {prefix}:job:* and {prefix:q:Q}:job:*."""
    found, batch = 0, []
    prefix = _GLOB.sub(r"\\\1", "{" + keys.prefix)
    async for key in redis.scan_iter(match=prefix + "[}:]*:job:*", count=_CHUNK):
        batch.append(key)
        if len(batch) >= _CHUNK:
            found += await _count_paused(redis, batch)
            batch = []
    return found + (await _count_paused(redis, batch) if batch else 0)


async def _count_paused(redis: Redis, job_keys: list[str]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for key in job_keys:
            pipe.hget(key, stored("state"))
        states = await pipe.execute(raise_on_error=False)  # a key of another type: an error
    return sum(1 for state in states if state == State.PAUSED)
