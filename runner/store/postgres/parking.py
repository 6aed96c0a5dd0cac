"""Parked jobs in PostgreSQL: written at enqueue or by a daemon's scan, moved into Redis
by any daemon.

A move holds the rows it moves locked (FOR UPDATE) while it writes them to Redis,
and deletes them in the same transaction: a mover that dies half-way leaves the
rows in place for the next one, which finds the jobs in Redis already (or their
history gone further, in runner_jobs) and only deletes the rows. So a job is
never lost between the two stores, and never put back twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from runner.states import ENDED
from runner.store.failures import on_postgres
from runner.store.postgres.queries import query

_FINISHED = sorted(str(state) for state in ENDED)
_FIRST = (-(2**63), "")  # before any row in (due_ms, id) order


class ParkedRow(NamedTuple):
    """A job to park: enqueue.lua's element for it (JSON text), what it is at, and the
    state it waits in (scheduled, or retrying)."""

    id: str
    due_ms: int
    seq: int
    attempt: int
    job: str
    state: str


class ParkedJob(NamedTuple):
    """A parked job read back to be moved; `recorded_seq` is runner_jobs' seq."""

    id: str
    state: str
    seq: int
    attempt: int
    job: str
    recorded_seq: int | None
    due_ms: int

    @property
    def moved_already(self) -> bool:
        """Its history went past the parked seq: it was put back before, by a mover
        that died before it deleted this row."""
        return self.recorded_seq is not None and self.recorded_seq > self.seq


@dataclass
class MovedPage:
    """What one page of a move did: rows read, rows gone, the ids whose jobs Redis
    would not take back (their rows stay), and where the page ended in due order."""

    seen: int = 0
    moved: int = 0
    stuck: list[str] = field(default_factory=list)
    last: tuple[int, str] = _FIRST


# Puts parked jobs back in Redis; returns the ids whose rows may go (see _move).
Mover = Callable[[list[ParkedJob]], Awaitable[set[str]]]
# Takes jobs out of Redis ({id: parked seq}); returns the ids taken out.
Taker = Callable[[dict[str, int]], Awaitable[set[str]]]


class PgParking:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @on_postgres
    async def park(self, rows: Sequence[ParkedRow], events: dict[str, str]) -> set[str]:
        """Park the jobs whose id is not parked yet, each with its event (by id, a
        stream event's JSON, "" for none) in the history, in one transaction; the
        ids parked now."""
        async with self.pool.acquire() as conn, conn.transaction():
            columns: list[Sequence[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[]] * 6
            parked = {r["id"] for r in await conn.fetch(query("park_jobs"), *columns)}
            written = [events[i] for i in sorted(parked) if events.get(i)]
            if written:
                entry = "[[" + ",".join(written) + "]]"
                await conn.fetch(query("write_events"), entry, _FINISHED)
        return parked

    @on_postgres
    async def move_due(
        self, until_ms: int, limit: int, move: Mover, after: tuple[int, str] = _FIRST
    ) -> MovedPage:
        """Move a page of up to `limit` parked jobs due by `until_ms`, in due order
        after `after` (where the page before ended), with `move` (into Redis), then
        delete their rows; a page of `limit` rows: there may be more."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetch(query("parked_due"), until_ms, limit, *after)
            rows = [ParkedJob(**dict(r)) for r in found]
            gone = await self._move(conn, rows, move)
        if not rows:
            return MovedPage()
        stuck = [row.id for row in rows if row.id not in gone]
        return MovedPage(len(rows), len(gone), stuck, (rows[-1].due_ms, rows[-1].id))

    @on_postgres
    async def move_ids(
        self, job_ids: Sequence[str], move: Mover, wanted: Callable[[ParkedJob], bool]
    ) -> dict[str, str]:
        """Move those of these jobs that are parked and `wanted` now (an operator's
        request needs them in Redis), waiting for a daemon moving one of them; the
        others stay parked. The state each parked one waits in, moved or not."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetch(query("parked_ids"), list(job_ids))
            rows = [ParkedJob(**dict(r)) for r in found]
            await self._move(conn, [row for row in rows if row.moved_already or wanted(row)], move)
        return {row.id: row.state for row in rows if not row.moved_already}

    @staticmethod
    async def _move(conn: Any, rows: list[ParkedJob], move: Mover) -> set[str]:
        """A row goes once its job is in Redis; a job whose history went on (put
        back before, by a mover that died) is not put back again. The ids gone."""
        fresh = [row for row in rows if not row.moved_already]
        done = await move(fresh) if fresh else set()
        gone = {row.id for row in rows if row.moved_already or row.id in done}
        if gone:
            await conn.execute(query("unpark"), sorted(gone))
        return gone

    @on_postgres
    async def take_out(self, seqs: Mapping[str, int], take: Taker) -> set[str]:
        """Have `take` remove the jobs from Redis while their rows parked at these seqs
        are held locked, so no mover can put one back meanwhile; a job whose row is
        gone (a mover found it in Redis and dropped it) stays in Redis. The row of a
        job `take` refused goes: Redis keeps that job. The ids now parked."""
        if not seqs:
            return set()
        async with self.pool.acquire() as conn, conn.transaction():
            held = await conn.fetch(query("parked_copies"), list(seqs), list(seqs.values()))
            mine = {r["id"]: seqs[r["id"]] for r in held}
            taken = await take(mine) if mine else set()
            kept = [job_id for job_id in mine if job_id not in taken]
            if kept:
                await conn.execute(query("unpark_copies"), kept, [mine[i] for i in kept])
        return taken

    @on_postgres
    async def count(self) -> tuple[int, int | None]:
        """How many jobs are parked, and the soonest due time (ms) among them."""
        row = await self.pool.fetchrow(query("parked_count"))
        return int(row["jobs"]), row["soonest_ms"]
