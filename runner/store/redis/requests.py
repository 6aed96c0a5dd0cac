"""An operator's requests in Redis: one script per request on jobs, and pausing whole
tasks (held sets; ALL_TASKS is maintenance mode). A base of RedisStore."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis

from runner.states import DEPENDENCY_ARGV, RETIRED_ARGV, WAITING, states_argv, transition
from runner.store.failures import on_redis
from runner.store.redis.keys import ALL_TASKS, DEFAULT_QUEUE, Keys
from runner.store.redis.scripts import Scripts
from runner.store.redis.waiting import WaitingForResume, read_held, read_waiting_for_resume


class RequestStore:
    redis: Redis
    keys: Keys
    scripts: Scripts
    publish: str  # PUBLISH, or SPUBLISH on a Redis Cluster (see wakeups.py)

    if TYPE_CHECKING:  # RedisStore's and QueueStore's

        def queue(self, name: str) -> RequestStore: ...

        async def route(self, job_ids: Sequence[str]) -> dict[str, list[str]]: ...

        async def queue_names(self, fresh: bool = False) -> list[str]: ...

    @on_redis
    async def request(
        self,
        action: str,
        job_ids: Sequence[str],
        by: str,
        now_ms: int,
        changes: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Apply an operator's request (see states.REQUESTS) to jobs, atomically each
        with its event, in whichever queue each is; per job "ok:<state>",
        "refused:<state>", "missing" or "malformed:<reason>"."""
        routed = await self.route(job_ids)
        parts = await asyncio.gather(
            *(
                self.queue(queue)._request_here(action, ids, by, now_ms, changes)
                for queue, ids in routed.items()
            )
        )
        replies = {
            job_id: reply
            for ids, got in zip(routed.values(), parts, strict=True)
            for job_id, reply in zip(ids, got, strict=True)
        }
        return [replies[job_id] for job_id in job_ids]

    async def _request_here(
        self,
        action: str,
        job_ids: Sequence[str],
        by: str,
        now_ms: int,
        changes: Mapping[str, Any] | None,
    ) -> list[str]:
        step = transition(action)
        replies: list[str] = await self.scripts.request(action)(
            keys=self.keys.requests,
            args=[
                now_ms,
                by,
                step.sources_argv,
                step.target or "",
                orjson.dumps(list(job_ids)).decode(),
                self.keys.wake_channel,
                self.keys.cancel_channel,
                orjson.dumps(changes or {}).decode(),
                RETIRED_ARGV,
                self.publish,
                DEPENDENCY_ARGV,
            ],
        )
        return replies

    @on_redis
    async def revive(
        self, jobs: Sequence[tuple[str, Mapping[str, Any]]], now_ms: int, keep_ms: int
    ) -> set[str]:
        """Hold again these forgotten jobs, each (id, its fields named in full), for a
        request to apply to (see lua/revive.lua); the ids brought back."""
        if not jobs:
            return set()
        replies = await self.scripts.revive(
            keys=[self.keys.job_prefix, self.keys.retired],
            args=[now_ms, keep_ms, orjson.dumps([list(job) for job in jobs]).decode()],
        )
        return {job_id for (job_id, _), reply in zip(jobs, replies, strict=True) if reply == 1}

    @on_redis
    async def pause_task(self, task: str, by: str, now_ms: int) -> bool:
        """Hold the task's jobs (":all": every job) on every daemon, in every queue;
        False if it was already paused. The record first, then each queue's copy
        (see queues.py)."""
        note = orjson.dumps({"by": by, "at": now_ms}).decode()
        paused = bool(await self.redis.hsetnx(self.keys.control.paused, task, note))
        for name in (await self.queue_names(fresh=True))[1:]:
            await self.redis.hset(self.keys.of_queue(name).paused, task, note)
        return paused

    @on_redis
    async def resume_task(self, task: str, chunk: int = 5000) -> bool:
        """Let the task's jobs run again, its held ones first, in every queue; False if
        it was not paused."""
        resumed = bool(await self.redis.hdel(self.keys.control.paused, task))
        for name in await self.queue_names(fresh=True):
            await self.queue(name)._resume_here(task, chunk)
        return resumed

    async def _resume_here(self, task: str, chunk: int) -> None:
        if self.keys.queue != DEFAULT_QUEUE:
            await self.redis.hdel(self.keys.paused, task)
        if task == ALL_TASKS:
            await self.redis.execute_command(self.publish, self.keys.wake_channel, "resumed")  # type: ignore[no-untyped-call]  # PUBLISH or SPUBLISH
            return
        keys = [*self.keys.due_all, self.keys.held(task), self.keys.job_prefix]
        while await self.scripts.release_held(
            keys=[*keys, self.keys.due_prefix],
            args=[states_argv(WAITING), chunk, self.keys.wake_channel, self.publish],
        ):
            pass

    @on_redis
    async def paused_summary(self) -> tuple[list[str], bool]:
        """The tasks paused one by one, and whether maintenance mode is on."""
        names = [str(name) for name in await self.redis.hkeys(self.keys.control.paused)]
        return sorted(n for n in names if n != ALL_TASKS), ALL_TASKS in names

    @on_redis
    async def paused_tasks(self) -> dict[str, dict[str, Any]]:
        """Paused tasks (":all" for maintenance mode): who paused each and when (ms)."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.control.paused)  # type: ignore[assignment]  # decode_responses=True
        notes: dict[str, dict[str, Any]] = {}
        for task, text in raw.items():
            try:
                note = orjson.loads(text)
            except orjson.JSONDecodeError:
                note = None
            notes[task] = note if isinstance(note, dict) else {"note": text}
        return notes

    @on_redis
    async def held_count(self, task: str) -> int:
        """The task's jobs held while it is paused, in every queue."""
        names = await self.queue_names()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(self.keys.of_queue(name).held(task))
            return int(sum(await pipe.execute()))

    @on_redis
    async def waiting_for_resume(self) -> WaitingForResume:
        """Jobs held by paused tasks and jobs paused one by one, in every queue (walks
        every job hash)."""
        queues = await self.queue_names(fresh=True)
        return await read_waiting_for_resume(self.redis, self.keys.control, queues)

    @on_redis
    async def held_by_paused_tasks(self) -> dict[str, int]:
        """Per paused task, its due jobs held in every queue (no walk)."""
        queues = await self.queue_names(fresh=True)
        return await read_held(self.redis, self.keys.control, queues)
