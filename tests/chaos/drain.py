"""Waiting, bounded in time, until the work is done and the recorder caught up.

Done means: every accepted job is in a terminal state in Redis, the transition
stream is empty (the recorder deletes what Postgres committed), and Postgres
holds a terminal row for every job. The audit runs after this, or after the
time ran out, and says what is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from tests.chaos.audit import CHUNK, TERMINAL
from tests.unrecorded import unrecorded


@dataclass
class Drain:
    drained: bool
    seconds: float
    waiting: int  # accepted jobs not yet terminal in Redis
    unrecorded: int  # entries left in the transition stream
    unrecorded_rows: int  # jobs without a terminal row in Postgres
    ended: float = 0.0  # time.monotonic() when the wait ended

    def describe(self) -> str:
        return (
            f"drained={self.drained} after {self.seconds:.1f}s: {self.waiting} jobs not "
            f"terminal, {self.unrecorded} stream entries unrecorded, {self.unrecorded_rows} "
            "jobs without a terminal row in postgres"
        )


async def _not_terminal(redis: Redis, keys: Keys, ids: Sequence[str]) -> list[str]:
    left: list[str] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hget(keys.job(job_id), stored("state"))
            states = await pipe.execute(raise_on_error=False)
        left += [i for i, state in zip(chunk, states, strict=True) if state not in TERMINAL]
    return left


async def _stream_length(redis: Redis, keys: Keys) -> int:
    return await unrecorded(redis, keys)


async def _rows_missing(database_url: str, ids: Sequence[str]) -> int:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        done = await conn.fetchval(
            "SELECT count(*) FROM runner_jobs WHERE id = ANY($1::text[]) AND state = ANY($2)",
            list(ids),
            list(TERMINAL),
        )
    finally:
        await conn.close()
    return len(ids) - int(done)


async def wait_drained(
    redis: Redis, keys: Keys, database_url: str, ids: Sequence[str], timeout: float
) -> Drain:
    """Poll until done or `timeout` s passed; servers that are away are waited for."""
    started = time.monotonic()
    waiting, unrecorded, missing = list(dict.fromkeys(ids)), -1, -1
    while time.monotonic() - started < timeout:
        try:
            waiting = await _not_terminal(redis, keys, waiting)
            if not waiting:
                unrecorded = await _stream_length(redis, keys)
            if not waiting and unrecorded == 0:
                missing = await _rows_missing(database_url, ids)
                if missing == 0:
                    return Drain(True, time.monotonic() - started, 0, 0, 0, time.monotonic())
        except Exception as exc:  # a server restarting or away: wait for it
            print(f"drain: {type(exc).__name__}: {exc}; waiting")
        await asyncio.sleep(0.25)
    return Drain(
        False, time.monotonic() - started, len(waiting), unrecorded, missing, time.monotonic()
    )
