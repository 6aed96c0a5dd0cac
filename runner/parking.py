"""Parking: a job due beyond `[daemon] park_horizon` waits in PostgreSQL, not Redis.

Redis memory is the scarce store: millions of reminders weeks ahead would fill it
while nothing about them changes. So such a job is written to PostgreSQL only (its
runner_jobs row, its first event and its parked row, in one transaction), and
every daemon's Promoter puts parked jobs into the Redis schedule once they are
due within the horizon, long before their time. The job's history goes on at the
seq it was parked at: being moved is no transition.

Everything else stays one set of rules, the Lua scripts': an operator's request
on a parked job brings it back into Redis first and is then applied there, and
an update that moves a job beyond the horizon parks it again afterwards. If
PostgreSQL cannot be reached at enqueue, a far job goes to Redis like any other
(enqueueing works while Postgres is down).

A job is parked again only after PostgreSQL holds it, and taken out of Redis
only while its row is held locked and if its seq has not moved since (park.lua);
a mover that finds a parked job in Redis already drops the row. So no job is
ever in neither store, and none is put back twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import orjson

from runner.clock import Clock
from runner.errors import StoreUnavailable
from runner.jobs import EnqueueResult, NewJob
from runner.states import State
from runner.store.job_rows import enqueue_detail, job_element
from runner.store.pg_parking import ParkedJob, ParkedRow, PgParking
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore

PgConnect = Callable[[], Awaitable[PgStore | None]]


class Parking:
    def __init__(
        self,
        store: RedisStore,
        history_store: PgConnect,
        horizon_s: float | None,
        clock: Clock,
        origin: str,
    ) -> None:
        self.store = store
        self.history_store = history_store  # Postgres, connected on first use
        self.horizon_s = horizon_s  # None: parking is off
        self.clock = clock
        self.origin = origin

    def beyond(self, due_ms: int, now_ms: int) -> bool:
        """Whether a job due then waits in PostgreSQL."""
        return self.horizon_s is not None and due_ms > now_ms + self.horizon_s * 1000

    async def _pg(self) -> PgParking | None:
        pg = await self.history_store()
        return None if pg is None else PgParking(pg.pool)

    async def park_new(self, jobs: Sequence[NewJob], now_ms: int) -> dict[str, EnqueueResult]:
        """Park the jobs due beyond the horizon (not cron ticks: their guard lives in
        Redis); what became of each job it took. {} when Postgres is out of reach:
        the caller enqueues them in Redis."""
        far = [job for job in jobs if job.guard is None and self.beyond(job.due_at_ms, now_ms)]
        if not far:
            return {}
        try:
            pg = await self._pg()
            if pg is None:
                return {}
            live = await self.store.job_states([job.id for job in far if job.chosen_id])
            fresh = [job for job in far if job.id not in live]
            parked = await pg.park(
                [_parked_row(job) for job in fresh],
                {job.id: self._first_event(job, now_ms) for job in fresh},
            )
            await self.store.retire(
                [(job.id, job.due_at_ms, State.SCHEDULED)
                 for job in fresh if job.chosen_id and job.id in parked]
            )  # fmt: skip
        except StoreUnavailable as exc:
            if exc.server != "postgres":
                raise
            return {}
        return {
            job.id: EnqueueResult(job.id, False, live[job.id])
            if job.id in live
            else EnqueueResult(job.id, job.id in parked, State.SCHEDULED)
            for job in far
        }

    def _first_event(self, job: NewJob, now_ms: int) -> str:
        """The event enqueue.lua would have written, for the history in Postgres."""
        event = [job.id, 1, "", State.SCHEDULED, now_ms, self.origin, 0, enqueue_detail(job)]
        return orjson.dumps(event).decode()

    async def bring_back(self, job_ids: Sequence[str]) -> set[str]:
        """Put these jobs into Redis now if they are parked; the ids that were."""
        pg = await self._pg()
        if pg is None or not job_ids:
            return set()
        return await pg.move_ids(job_ids, self.put_back)

    async def promote_due(self, limit: int) -> int:
        """Put parked jobs due within the horizon (all of them when parking is off)
        into Redis, soonest first, at most `limit`; how many went."""
        pg = await self._pg()
        if pg is None:
            return 0
        now = self.clock.now_ms()
        until = now + int(self.horizon_s * 1000) if self.horizon_s is not None else 2**62
        return await pg.move_due(until, limit, self.put_back)

    async def put_back(self, jobs: list[ParkedJob]) -> set[str]:
        """Schedule the jobs in Redis; the ids whose parked rows may go: put back now,
        or held by Redis already (put back by a mover that died before it could drop
        the row, or still being parked: then its parker finds the row gone and
        leaves the job in Redis). A key of another type under the job's name keeps
        the row, so the job is not lost."""
        replies = await self.store.put_back(jobs, self.clock.now_ms())
        return {
            job.id
            for job, reply in zip(jobs, replies, strict=True)
            if not reply.startswith("=invalid")
        }

    async def park_again(self, job_ids: Sequence[str]) -> set[str]:
        """Park the jobs an update moved beyond the horizon; the ids parked. With
        Postgres out of reach they stay in Redis, which is no less correct: the
        update itself is done."""
        if self.horizon_s is None or not job_ids:
            return set()
        parked: set[str] = set()
        try:
            await self._park_again(job_ids, parked)
        except StoreUnavailable as exc:
            if exc.server != "postgres":
                raise
        return parked

    async def _park_again(self, job_ids: Sequence[str], parked: set[str]) -> None:
        pg = await self._pg()
        if pg is None:
            return
        now = self.clock.now_ms()
        for job_id in job_ids:
            row = await self.store.parkable(job_id)
            if row is None or not self.beyond(row.due_ms, now):
                continue
            if not await pg.park([row], {}):
                continue  # a copy from before is there; the promoter sorts it out

            async def take(job_id: str = job_id, seq: int = row.seq) -> bool:
                [reply] = await self.store.take_parked({job_id: seq}, self.origin, now)
                return reply.startswith("ok:")

            if await pg.take_out(job_id, row.seq, take):
                parked.add(job_id)


def _parked_row(job: NewJob) -> ParkedRow:
    """The job as PostgreSQL keeps it parked; a chosen id stays marked as such when it
    is put back (enqueue.lua writes the element's extra fields)."""
    if job.chosen_id:
        job = replace(job, extra={**job.extra, "chosen_id": "1"})
    element = orjson.dumps(job_element(job)).decode()
    return ParkedRow(job.id, job.due_at_ms, 1, 0, element)
