"""Parking in Redis: finding waiting jobs due far ahead, putting parked jobs back
(enqueue.lua, at their own seq and in their own state, with no event) and taking
waiting jobs out once PostgreSQL holds them (park.lua). A base of RedisStore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.states import GOING, RETIRED_ARGV, WAITING, State, states_argv
from runner.store.failures import on_redis
from runner.store.job_rows import ELEMENT_FIELDS
from runner.store.postgres.parking import ParkedJob, ParkedRow
from runner.store.redis.fields import named
from runner.store.redis.keys import DEFAULT_QUEUE, QUEUE_NAME, Keys
from runner.store.redis.scripts import Scripts

# Hash fields a waiting job carries besides its element's and extra fields; the rest
# (its last error too, for a retrying job) comes back with it when it is put back.
_STATE_FIELDS = {"state", "attempt", "seq", "created_at", "updated_at", "started_at", "owner",
                 "result"}  # fmt: skip
# A cron tick's job stays in Redis, where its schedule's overlap guard looks for it;
# a unique job too, where its enqueue's check finds it (runner/limits/unique.py), and
# a job of a bounded task, which its task's waiting list counts (limits/bounds.py).
_STAYS = ("cron", "unique", "bound", "queue_bound", "after")
# The extra field of a parked element that names its queue (never a job hash's).
QUEUE_FIELD = "queue"
# The field of a job brought back for a request: until when no parker takes it out.
KEPT_FIELD = "kept_until"


def parked_fields(queue: str, priority: int) -> dict[str, str]:
    """What a parked element's extra fields add for a job's queue and priority."""
    fields = {} if queue == DEFAULT_QUEUE else {QUEUE_FIELD: queue}
    return fields | ({"priority": str(priority)} if priority else {})


def _whole(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ParkStore:
    redis: Redis
    keys: Keys
    scripts: Scripts
    publish: str  # PUBLISH, or SPUBLISH on a Redis Cluster (see wakeups.py)

    def job_key(self, job_id: str) -> str:
        """The key of the job's hash, for messages that tell an operator what to fix."""
        return self.keys.job(job_id)

    @on_redis
    async def put_back(
        self, jobs: Sequence[ParkedJob], now_ms: int, kept_until_ms: int = 0
    ) -> list[str]:
        """Schedule parked jobs in Redis as they were parked, each in the state it waits
        in and in its queue; per job the state it is in now ("=<state>" for one Redis
        holds already, which is left as it is; "=invalid" when a key of another type
        holds its name). With `kept_until_ms`, no parker takes them out again before
        then (parkable)."""
        replies: dict[str, str] = {}
        rows = {job.id: _put_back_row(job, kept_until_ms) for job in jobs}
        for state, queue in sorted({(job.state, rows[job.id][0]) for job in jobs}):
            group = [job for job in jobs if job.state == state and rows[job.id][0] == queue]
            keys = self.keys.of_queue(queue)
            levels = {(r[2], r[12]) for r in (rows[job.id][1] for job in group) if r[12]}
            answers: list[str] = await self.scripts.enqueue(
                keys=keys.enqueue_for(levels),
                args=[
                    now_ms,
                    state,
                    "",
                    keys.wake_channel,
                    orjson.dumps([rows[job.id][1] for job in group]).decode(),
                    states_argv(GOING),
                    RETIRED_ARGV,
                    self.publish,
                ],
            )
            replies.update(zip((job.id for job in group), answers, strict=True))
        return [replies[job.id] for job in jobs]

    @on_redis
    async def far_waiting(self, after_ms: int, skip: int, limit: int) -> list[str]:
        """Up to `limit` ids of jobs waiting in the schedule (any kind) due after
        `after_ms`, soonest first, passing over the first `skip` of them."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys.due_all:
                pipe.zrangebyscore(key, f"({after_ms}", "+inf", 0, skip + limit, withscores=True)
            pages: list[list[tuple[str, float]]] = await pipe.execute()
        found = sorted((score, job_id) for page in pages for job_id, score in page)
        return [job_id for _, job_id in found[skip : skip + limit]]

    @on_redis
    async def parkable(self, job_ids: Sequence[str], now_ms: int = 0) -> list[ParkedRow]:
        """These jobs as they would be parked, those Redis holds waiting (scheduled or
        retrying) and whole; not a cron tick's, not a malformed hash, which stays
        where it is, for a daemon to set aside, and, given `now_ms`, not one kept in
        Redis for a request until later (put_back)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            found = await pipe.execute(raise_on_error=False)
        queue = parked_fields(self.keys.queue, 0)
        rows = [_parkable(i, raw, queue, now_ms) for i, raw in zip(job_ids, found, strict=True)]
        return [row for row in rows if row is not None]

    @on_redis
    async def take_parked(self, seqs: Mapping[str, int], by: str, now_ms: int) -> list[str]:
        """Take out of Redis these jobs, which PostgreSQL now holds parked at these
        seqs; per job "ok:<state>", or why it stays (see park.lua)."""
        replies: list[str] = await self.scripts.park(
            keys=self.keys.requests,
            args=[
                now_ms,
                by,
                states_argv(WAITING),
                State.SCHEDULED,  # the state a parked job's chosen id is retired in
                orjson.dumps(list(seqs)).decode(),
                self.keys.wake_channel,
                self.keys.cancel_channel,
                orjson.dumps(dict(seqs)).decode(),
                RETIRED_ARGV,
                self.publish,
            ],
        )
        return replies


def _put_back_row(job: ParkedJob, kept_until_ms: int = 0) -> tuple[str, list[Any]]:
    """The queue a parked job goes back to, and its enqueue.lua element: its own seq
    and attempt, not chosen anew, its priority (see enqueue.lua), and until when it is
    kept in Redis, if it is."""
    element = orjson.loads(job.job)
    extra = element[7] if len(element) > 7 and isinstance(element[7], dict) else {}
    if kept_until_ms and len(element) > 7 and isinstance(element[7], dict):
        extra[KEPT_FIELD] = str(kept_until_ms)
    queue = extra.pop(QUEUE_FIELD, DEFAULT_QUEUE)
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        queue = DEFAULT_QUEUE  # a row someone else wrote: the default queue still runs it
    return queue, [*element, "", False, [job.seq, job.attempt], 0, _whole(extra.get("priority"))]


def _parkable(job_id: str, found: Any, queue: dict[str, str], now_ms: int) -> ParkedRow | None:
    """The job hash read from Redis as a row to park, if it may be parked."""
    if not isinstance(found, dict):
        return None  # a key of another type
    raw = named(found)
    state = raw.get("state")
    if state not in WAITING or any(f in raw for f in _STAYS):
        return None
    kept_until = _whole(raw.pop(KEPT_FIELD, None)) or 0
    if kept_until > now_ms > 0:
        return None  # brought back for a request a moment ago
    if any(f not in raw for f in ELEMENT_FIELDS):
        return None
    numbers = [_whole(raw.get(f)) for f in ("due_at", "max_attempts", "seq", "attempt")]
    due, max_attempts, seq, attempt = numbers
    if due is None or max_attempts is None or seq is None or attempt is None:
        return None
    extra = {k: v for k, v in raw.items() if k not in _STATE_FIELDS and k not in ELEMENT_FIELDS}
    extra.update(queue)
    element = [job_id, raw["task"], raw["kind"], raw["args"], raw["kwargs"], due,
               max_attempts, extra]  # fmt: skip
    return ParkedRow(job_id, due, seq, attempt, orjson.dumps(element).decode(), state)
