"""Parked jobs in PostgreSQL: written at enqueue, moved into Redis by any daemon.

A move holds the rows it moves locked (FOR UPDATE) while it writes them to Redis,
and deletes them in the same transaction: a mover that dies half-way leaves the
rows in place for the next one, which finds the jobs in Redis already (or their
history gone further, in runner_jobs) and only deletes the rows. So a job is
never lost between the two stores, and never put back twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from runner.states import ENDED
from runner.store.failures import on_postgres
from runner.store.sql import query

_FINISHED = sorted(str(state) for state in ENDED)


class ParkedRow(NamedTuple):
    """A job to park: enqueue.lua's element for it (JSON text) and what it is at."""

    id: str
    due_ms: int
    seq: int
    attempt: int
    job: str


class ParkedJob(NamedTuple):
    """A parked job read back to be moved; `recorded_seq` is runner_jobs' seq."""

    id: str
    seq: int
    attempt: int
    job: str
    recorded_seq: int | None

    @property
    def moved_already(self) -> bool:
        """Its history went past the parked seq: it was put back before, by a mover
        that died before it deleted this row."""
        return self.recorded_seq is not None and self.recorded_seq > self.seq


# Puts parked jobs back in Redis; returns the ids whose rows may go (see _move).
Mover = Callable[[list[ParkedJob]], Awaitable[set[str]]]


class PgParking:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @on_postgres
    async def park(self, rows: Sequence[ParkedRow], events: dict[str, str]) -> set[str]:
        """Park the jobs whose id is not parked yet, each with its event (by id, a
        stream event's JSON, "" for none) in the history, in one transaction; the
        ids parked now."""
        async with self.pool.acquire() as conn, conn.transaction():
            columns: list[Sequence[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[]] * 5
            parked = {r["id"] for r in await conn.fetch(query("park_jobs"), *columns)}
            written = [events[i] for i in sorted(parked) if events.get(i)]
            if written:
                entry = "[[" + ",".join(written) + "]]"
                await conn.fetch(query("write_events"), entry, _FINISHED)
        return parked

    @on_postgres
    async def move_due(self, until_ms: int, limit: int, move: Mover) -> int:
        """Move up to `limit` parked jobs due by `until_ms` with `move` (into Redis),
        then delete them; how many rows went (== limit: there may be more)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = [ParkedJob(*r) for r in await conn.fetch(query("parked_due"), until_ms, limit)]
            return await self._move(conn, rows, move)

    @on_postgres
    async def move_ids(self, job_ids: Sequence[str], move: Mover) -> set[str]:
        """Move these jobs now if they are parked (an operator's request needs them
        in Redis), waiting for a daemon moving one of them; the ids that were parked."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = [ParkedJob(*r) for r in await conn.fetch(query("parked_ids"), list(job_ids))]
            await self._move(conn, rows, move)
        return {row.id for row in rows}

    @staticmethod
    async def _move(conn: Any, rows: list[ParkedJob], move: Mover) -> int:
        """A row goes once its job is in Redis; a job whose history went on (put
        back before, by a mover that died) is not put back again."""
        fresh = [row for row in rows if not row.moved_already]
        done = await move(fresh) if fresh else set()
        gone = [row.id for row in rows if row.moved_already or row.id in done]
        if gone:
            await conn.execute(query("unpark"), gone)
        return len(gone)

    @on_postgres
    async def take_out(self, job_id: str, seq: int, take: Callable[[], Awaitable[bool]]) -> bool:
        """Have `take` remove the job from Redis while its row parked at `seq` is held
        locked, so no mover can put it back meanwhile; without the row (a mover found
        the job in Redis and dropped it) the job stays in Redis. A refused `take`
        drops the row: Redis keeps the job. Whether the job is now parked."""
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(query("parked_copy"), job_id, seq) is None:
                return False
            taken = await take()
            if not taken:
                await conn.execute(query("unpark_copy"), job_id, seq)
        return taken

    @on_postgres
    async def count(self) -> tuple[int, int | None]:
        """How many jobs are parked, and the soonest due time (ms) among them."""
        row = await self.pool.fetchrow(query("parked_count"))
        return int(row["jobs"]), row["soonest_ms"]
