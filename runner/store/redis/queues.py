"""The queues: which exist, where a job is, and the paused tasks' copies.

Each queue's keys are in a slot of their own (keys.py), so a verb on jobs runs on
the view of the store that holds their queue's keys (RedisStore.queue). What
spans queues is in the control slot: the registry of queue names, added to
before a queue's first job is enqueued, and the record of paused tasks.

A claim reads the paused tasks in the same script that takes due jobs, and a
script sees only its own slot: so every queue keeps a copy of the record in its
slot. Pausing writes the record, then the copy of every registered queue; a queue
registered meanwhile copies the record after registering, so one of the two sees
the other. `sync_paused` makes the copies right again whatever happened (a
crash between the writes, a resume racing a registration); daemons call it
every few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis

from runner.store.failures import on_redis
from runner.store.redis.keys import DEFAULT_QUEUE, QUEUE_NAME, Keys

NAMES_FRESH_S = 1.0  # how long the registry read is taken as current


class QueueStore:
    redis: Redis
    keys: Keys
    _registered: set[str]
    _names: tuple[float, list[str]] | None

    @on_redis
    async def register_queues(self, names: Iterable[str]) -> None:
        """Note these queues in the registry (once per store object), each new one
        with its copy of the paused tasks."""
        new = sorted({n for n in names if n != DEFAULT_QUEUE} - self._registered)
        if not new:
            return
        added = await self.redis.sadd(self.keys.queues, *new)
        if added:
            paused: dict[Any, Any] = await self.redis.hgetall(self.keys.control.paused)
            if paused:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for name in new:
                        pipe.hset(self.keys.of_queue(name).paused, mapping=paused)
                    await pipe.execute()
        self._registered.update(new)
        self._names = None

    @on_redis
    async def queue_names(self, fresh: bool = False) -> list[str]:
        """Every queue jobs were enqueued to, the default one first; names that are
        not a queue's (anyone can write to the set) are left out. Read at most once a
        second unless `fresh`."""
        if not fresh and self._names and time.monotonic() - self._names[0] < NAMES_FRESH_S:
            return self._names[1]
        raw = await self.redis.smembers(self.keys.queues)
        names = sorted(str(n) for n in raw if QUEUE_NAME.fullmatch(str(n)))
        listed = [DEFAULT_QUEUE, *(n for n in names if n != DEFAULT_QUEUE)]
        self._names = (time.monotonic(), listed)
        return listed

    @on_redis
    async def locate(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The queue of each job that Redis holds (one round trip per queue known);
        a job in none of them is not in the reply."""
        names = await self.queue_names()
        found = await self._locate_in(names, job_ids)
        missing = [i for i in job_ids if i not in found]
        if missing:  # a queue may be new since the registry was read
            new = [n for n in await self.queue_names(fresh=True) if n not in names]
            found.update(await self._locate_in(new, missing))
        return found

    async def route(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """The jobs by the queue whose scripts should handle them: their own, or the
        default queue's for a job Redis does not hold (its script says "missing").
        With the default queue alone, no lookup at all."""
        if await self.queue_names() == [DEFAULT_QUEUE]:
            return {DEFAULT_QUEUE: list(job_ids)} if job_ids else {}
        found = await self.locate(job_ids)
        routed: dict[str, list[str]] = {}
        for job_id in job_ids:
            routed.setdefault(found.get(job_id, DEFAULT_QUEUE), []).append(job_id)
        return routed

    async def _locate_in(self, names: list[str], job_ids: Sequence[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                keys = self.keys.of_queue(name)
                for job_id in job_ids:
                    pipe.exists(keys.job(job_id))
            replies = await pipe.execute()
        found: dict[str, str] = {}
        at = iter(replies)
        for name in names:
            for job_id in job_ids:
                if next(at) and job_id not in found:
                    found[job_id] = name
        return found

    @on_redis
    async def sync_paused(self) -> None:
        """Make every queue's copy of the paused tasks the record's again."""
        names = await self.queue_names(fresh=True)
        record: dict[Any, Any] = await self.redis.hgetall(self.keys.control.paused)
        for name in names[1:]:
            key = self.keys.of_queue(name).paused
            copy = await self.redis.hgetall(key)
            if copy == record:
                continue
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if record:
                    pipe.hset(key, mapping=record)
                await pipe.execute()
