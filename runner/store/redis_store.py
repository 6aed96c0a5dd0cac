"""Live job state in Redis, changed only through the Lua scripts.

Each verb is one round trip (one EVALSHA, or one pipeline), whatever the batch
size: claim, finish and renew are batched by their callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.jobs import (
    ClaimedJob,
    ClaimResult,
    EnqueueResult,
    JobRecord,
    NewJob,
    Outcome,
    ReapedJob,
)
from runner.states import GOING, TRANSITIONS, State, states_argv, transition
from runner.store.keys import KINDS, Keys
from runner.store.scripts import Scripts

StreamEntry = tuple[str, str]

_CORE_FIELDS = {
    "id",
    "task",
    "kind",
    "state",
    "attempt",
    "max_attempts",
    "seq",
    "args",
    "kwargs",
    "due_at",
    "created_at",
    "updated_at",
    "started_at",
    "owner",
    "result",
    "error",
}


def _int(value: str | None) -> int | None:
    return None if value in (None, "") else int(value)


def _json(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


class RedisStore:
    def __init__(self, redis: Redis, keys: Keys, keep_finished_ms: int = 0) -> None:
        self.redis = redis
        self.keys = keys
        self.keep_finished_ms = keep_finished_ms
        self.scripts = Scripts.register(redis)

    async def enqueue(self, job: NewJob, origin: str, now_ms: int) -> EnqueueResult:
        return (await self.enqueue_many([job], origin, now_ms))[0]

    async def enqueue_many(
        self, jobs: Sequence[NewJob], origin: str, now_ms: int
    ) -> list[EnqueueResult]:
        """One script call for the batch: one round trip and one stream entry."""
        if not jobs:
            return []
        packed = orjson.dumps([_enqueue_row(job) for job in jobs]).decode()
        replies = await self.scripts.enqueue(
            keys=[*self.keys.due_all, self.keys.events, self.keys.job_prefix, self.keys.cron_state],
            args=[
                now_ms,
                State.SCHEDULED,
                origin,
                self.keys.wake_channel,
                packed,
                states_argv(GOING),
            ],
        )
        return [
            EnqueueResult(job.id, not reply.startswith("="), reply.lstrip("="))
            for job, reply in zip(jobs, replies, strict=True)
        ]

    async def claim_due(
        self, now_ms: int, limits: dict[str, int], daemon: str, lease_until_ms: int
    ) -> ClaimResult:
        claim = transition("claim")
        flat, nexts = await self.scripts.claim(
            keys=[*self.keys.due_all, self.keys.leases, self.keys.events, self.keys.job_prefix],
            args=[
                now_ms,
                daemon,
                lease_until_ms,
                claim.sources_argv,
                claim.target,
                *(limits.get(kind, 0) for kind in KINDS),
            ],
        )
        jobs = [
            ClaimedJob(
                id=flat[i],
                task=flat[i + 1],
                kind=flat[i + 2],
                attempt=int(flat[i + 3]),
                max_attempts=int(flat[i + 4]),
                args_json=flat[i + 5],
                kwargs_json=flat[i + 6],
                due_at_ms=int(flat[i + 7]),
            )
            for i in range(0, len(flat), 8)
        ]
        next_due = {kind: _int(value) for kind, value in zip(KINDS, nexts, strict=True)}
        return ClaimResult(jobs, next_due)

    async def finish(self, now_ms: int, daemon: str, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record outcomes; False for each job this daemon no longer owned (fenced off)."""
        packed = orjson.dumps(
            [
                (
                    o.job_id, o.attempt, TRANSITIONS[o.action].target, o.due_at_ms or 0,
                    o.result_json, o.error, o.detail_json, int(o.give_back),
                )
                for o in outcomes
            ]
        ).decode()  # fmt: skip
        replies = await self.scripts.finish(
            keys=[self.keys.leases, self.keys.events, *self.keys.due_all, self.keys.job_prefix],
            args=[
                now_ms,
                daemon,
                self.keep_finished_ms,
                transition("succeed").sources_argv,
                self.keys.wake_channel,
                packed,
            ],
        )
        return [bool(r) for r in replies]

    async def renew_leases(
        self, daemon: str, lease_until_ms: int, jobs: Iterable[tuple[str, int]]
    ) -> list[str]:
        """Extend leases; returns the ids whose lease this daemon has lost."""
        args: list[str | int] = [daemon, lease_until_ms, State.RUNNING]
        for job_id, attempt in jobs:
            args += [job_id, attempt]
        if len(args) == 3:
            return []
        lost: list[str] = await self.scripts.renew(
            keys=[self.keys.leases, self.keys.job_prefix], args=args
        )
        return lost

    async def reap_expired(self, now_ms: int, reaper: str, limit: int = 500) -> list[ReapedJob]:
        retry, fail = transition("lease_expired_retry"), transition("lease_expired_fail")
        flat = await self.scripts.reap(
            keys=[self.keys.leases, self.keys.events, *self.keys.due_all, self.keys.job_prefix],
            args=[
                now_ms,
                limit,
                reaper,
                retry.sources_argv,
                retry.target,
                fail.target,
                self.keep_finished_ms,
                self.keys.wake_channel,
            ],
        )
        return [
            ReapedJob(flat[i], flat[i + 1], int(flat[i + 2]), flat[i + 3])
            for i in range(0, len(flat), 4)
        ]

    async def cron_baseline(self, name: str, now_ms: int) -> int:
        """The schedule's last handled tick (ms); set to `now_ms` the first time it is seen,
        so a new schedule does not fire ticks from before it existed."""
        await self.redis.hsetnx(self.keys.cron_state, f"{name}:tick", now_ms)
        value = await self.redis.hget(self.keys.cron_state, f"{name}:tick")
        return int(value or now_ms)

    async def cron_state(self) -> dict[str, str]:
        state: dict[str, str] = await self.redis.hgetall(self.keys.cron_state)  # type: ignore[assignment]  # decode_responses=True
        return state

    async def heartbeat(self, daemon: str, now_ms: int) -> None:
        await self.redis.zadd(self.keys.daemons, {daemon: now_ms})

    async def forget_daemon(self, daemon: str) -> None:
        await self.redis.zrem(self.keys.daemons, daemon)

    async def get_job(self, job_id: str) -> JobRecord | None:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]  # decode_responses=True
        if not raw:
            return None
        return JobRecord(
            id=raw.get("id", job_id),
            task=raw.get("task", ""),
            state=raw.get("state", ""),
            attempt=_int(raw.get("attempt")) or 0,
            max_attempts=_int(raw.get("max_attempts")) or 1,
            due_at_ms=_int(raw.get("due_at")),
            args=_json(raw.get("args")),
            kwargs=_json(raw.get("kwargs")),
            result=_json(raw.get("result")),
            error=raw.get("error"),
            created_at_ms=_int(raw.get("created_at")),
            updated_at_ms=_int(raw.get("updated_at")),
            owner=raw.get("owner"),
            extra={k: v for k, v in raw.items() if k not in _CORE_FIELDS},
        )

    async def due_counts(self, now_ms: int) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind in KINDS:
                pipe.zcount(self.keys.due(kind), "-inf", now_ms)
            counts = await pipe.execute()
        return dict(zip(KINDS, counts, strict=True))

    async def outstanding(self) -> int:
        """Jobs waiting (any due time) or running: 0 means no work is left."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in (*self.keys.due_all, self.keys.leases):
                pipe.zcard(key)
            counts = await pipe.execute()
        return int(sum(counts))

    # The transition stream, drained by the recorder through a consumer group.

    async def ensure_event_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                self.keys.events, self.keys.recorder_group, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

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
        return [] if not reply else _entries(reply[0][1])

    async def claim_stale_events(
        self, consumer: str, min_idle_ms: int, count: int
    ) -> list[StreamEntry]:
        """Take over entries another consumer read but never acknowledged (it died)."""
        reply = await self.redis.xautoclaim(
            self.keys.events, self.keys.recorder_group, consumer, min_idle_ms, "0-0", count=count
        )
        return _entries(reply[1])

    async def ack_events(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge and delete recorded entries: the stream only holds what is unrecorded."""
        if not entry_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.events, self.keys.recorder_group, *entry_ids)
            pipe.xdel(self.keys.events, *entry_ids)
            await pipe.execute()

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


def _enqueue_row(job: NewJob) -> tuple[Any, ...]:
    extra = orjson.dumps(job.extra).decode()[1:-1] if job.extra else ""
    detail = (
        f'{{"task":{orjson.dumps(job.task).decode()},"args":{job.args_json},'
        f'"kwargs":{job.kwargs_json},"due_at":{job.due_at_ms}{"," if extra else ""}{extra}}}'
    )
    row = (job.id, job.task, job.kind, job.args_json, job.kwargs_json, job.due_at_ms,
           job.max_attempts, job.extra, detail)  # fmt: skip
    return row if job.guard is None else (*row, job.guard)


def _entries(raw: Any) -> list[StreamEntry]:
    """(entry id, JSON array of events) pairs; "[]" for an entry deleted while pending."""
    return [(entry_id, fields["e"] if fields else "[]") for entry_id, fields in raw]
