"""Parking in Redis: putting parked jobs back (enqueue.lua, at their own seq, with no
event) and taking scheduled jobs out once PostgreSQL holds them (park.lua).
A base of RedisStore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.states import GOING, RETIRED_ARGV, State, states_argv
from runner.store.failures import on_redis
from runner.store.job_fields import named
from runner.store.job_rows import ELEMENT_FIELDS
from runner.store.keys import Keys
from runner.store.pg_parking import ParkedJob, ParkedRow
from runner.store.scripts import Scripts

# Hash fields a scheduled job carries besides its element's and extra fields.
_STATE_FIELDS = {"state", "attempt", "seq", "created_at", "updated_at", "started_at", "owner",
                 "result", "error"}  # fmt: skip


def _whole(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ParkStore:
    redis: Redis
    keys: Keys
    scripts: Scripts

    @on_redis
    async def put_back(self, jobs: Sequence[ParkedJob], now_ms: int) -> list[str]:
        """Schedule parked jobs in Redis as they were parked; per job the state it is
        in now ("=<state>" for one Redis holds already, which is left as it is;
        "=invalid" when a key of another type holds its name)."""
        rows = [[*orjson.loads(job.job), "", False, [job.seq, job.attempt]] for job in jobs]
        replies: list[str] = await self.scripts.enqueue(
            keys=self.keys.enqueue,
            args=[
                now_ms,
                State.SCHEDULED,
                "",
                self.keys.wake_channel,
                orjson.dumps(rows).decode(),
                states_argv(GOING),
                RETIRED_ARGV,
            ],
        )
        return replies

    @on_redis
    async def parkable(self, job_id: str) -> ParkedRow | None:
        """The job as it would be parked, if Redis holds it scheduled and whole (a
        malformed hash stays where it is, for a daemon to set aside)."""
        found: dict[str, str] = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]  # decode_responses=True
        raw = named(found)
        if raw.get("state") != State.SCHEDULED or any(f not in raw for f in ELEMENT_FIELDS):
            return None
        numbers = [_whole(raw.get(f)) for f in ("due_at", "max_attempts", "seq", "attempt")]
        due, max_attempts, seq, attempt = numbers
        if due is None or max_attempts is None or seq is None or attempt is None:
            return None
        extra = {k: v for k, v in raw.items() if k not in _STATE_FIELDS and k not in ELEMENT_FIELDS}
        element = [job_id, raw["task"], raw["kind"], raw["args"], raw["kwargs"], due,
                   max_attempts, extra]  # fmt: skip
        job = orjson.dumps(element).decode()
        return ParkedRow(job_id, due, seq, attempt, job)

    @on_redis
    async def take_parked(self, seqs: Mapping[str, int], by: str, now_ms: int) -> list[str]:
        """Take out of Redis these jobs, which PostgreSQL now holds parked at these
        seqs; per job "ok:scheduled", or why it stays (see park.lua)."""
        replies: list[str] = await self.scripts.park(
            keys=self.keys.control,
            args=[
                now_ms,
                by,
                states_argv(frozenset({State.SCHEDULED})),
                "",
                orjson.dumps(list(seqs)).decode(),
                self.keys.wake_channel,
                self.keys.cancel_channel,
                orjson.dumps(dict(seqs)).decode(),
                RETIRED_ARGV,
            ],
        )
        return replies
