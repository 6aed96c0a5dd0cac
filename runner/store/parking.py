"""Parking: a job due beyond `[daemon] park_horizon` waits in PostgreSQL, not Redis.

Redis memory is the scarce store: millions of reminders weeks ahead would fill it
while nothing about them changes. So such a job is written to PostgreSQL only (its
runner_jobs row, its first event and its parked row, in one transaction), and
every daemon's Promoter puts parked jobs into the Redis schedule once they are
due within the horizon, long before their time. The job's history goes on at the
seq it was parked at: being moved is no transition.

A job can also reach the Redis schedule far ahead: a retry whose backoff reaches
beyond the horizon (the finisher's one round trip per batch stays as it is), a
job enqueued while PostgreSQL was down, a horizon made shorter. The Promoter's
scan parks those too, in the state they wait in (retrying comes back retrying);
a cron tick's job stays in Redis, where its schedule's overlap guard looks.

Everything else stays one set of rules, the Lua scripts': an operator's request
on a parked job brings it back into Redis first and is then applied there, and
an update that moves a job beyond the horizon parks it again afterwards. A
request the job's state refuses (resume of a scheduled job, retry of one that
never failed) is refused by the state it waits in, and the job stays parked. If
PostgreSQL cannot be reached at enqueue, a far job goes to Redis like any other
(enqueueing works while Postgres is down), and a later scan parks it.

A job is parked again only after PostgreSQL holds it, and taken out of Redis
only while its row is held locked and if its seq has not moved since (park.lua);
a mover that finds a parked job in Redis already drops the row. So no job is
ever in neither store, and none is put back twice. A job's queue and priority
travel with its parked row (its element's extra fields) and it goes back to them.
A row whose job Redis will not take back (a key of another type holds its name)
stays parked, so the job is not
lost, is reported at every scan until that key is gone, and is passed over: the
rows behind it move on time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import orjson

from runner.clock import Clock
from runner.errors import StoreUnavailable
from runner.jobs import EnqueueResult, NewJob
from runner.logs import get_logger
from runner.states import State
from runner.store.job_rows import enqueue_detail, job_element
from runner.store.postgres.parking import ParkedJob, ParkedRow, PgParking
from runner.store.postgres.store import PgStore
from runner.store.redis.parking import parked_fields
from runner.store.redis.store import RedisStore

PgConnect = Callable[[], Awaitable[PgStore | None]]
# A new job that Redis must hold: its unique key and its task's waiting list are there.
_STAYS = frozenset({"unique", "bound", "queue_bound", "after"})
# How long a job brought back for a request stays in Redis before a parker may take it
# out again (it is still due beyond the horizon): the request reaches it well before.
KEPT_MS = 60_000

log = get_logger()


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
        far = [job for job in jobs if job.guard is None and not _STAYS & job.extra.keys()
               and self.beyond(job.due_at_ms, now_ms)]  # fmt: skip
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
            for queue in {job.queue for job in fresh}:
                await self.store.queue(queue).retire(
                    [(job.id, job.due_at_ms, State.SCHEDULED) for job in fresh
                     if job.chosen_id and job.id in parked and job.queue == queue]
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

    async def bring_back(
        self, job_ids: Sequence[str], accepts: Callable[[str], bool]
    ) -> dict[str, str]:
        """Put into Redis now those of these jobs that are parked in a state `accepts`
        (the request that needs them there may apply to it); the others stay parked.
        The state each parked job waits in, brought back or not."""
        pg = await self._pg()
        if pg is None or not job_ids:
            return {}
        return await pg.move_ids(job_ids, self._put_back_kept, lambda row: accepts(row.state))

    async def promote_due(self, limit: int) -> int:
        """Put parked jobs due within the horizon (all of them when parking is off)
        into Redis, soonest first, in pages of `limit`; how many went. Rows that
        stay (their jobs' names are taken in Redis) are passed over and reported."""
        pg = await self._pg()
        if pg is None:
            return 0
        now = self.clock.now_ms()
        until = now + int(self.horizon_s * 1000) if self.horizon_s is not None else 2**62
        page = await pg.move_due(until, limit, self.put_back)
        moved, stuck = page.moved, page.stuck
        while page.seen == limit:
            page = await pg.move_due(until, limit, self.put_back, page.last)
            moved, stuck = moved + page.moved, stuck + page.stuck
        if stuck:
            log.warning(
                "parked jobs cannot be put back: a key of another type holds each one's "
                "name in Redis; they stay parked until it is deleted or renamed",
                jobs=len(stuck), job_ids=stuck[:10], key=self.store.job_key(stuck[0]),
            )  # fmt: skip
        return moved

    async def _put_back_kept(self, jobs: list[ParkedJob]) -> set[str]:
        """put_back for a request: each job is kept in Redis for KEPT_MS (no parker takes
        it out again before the request reaches it: it is still due beyond the horizon)."""
        return await self.put_back(jobs, self.clock.now_ms() + KEPT_MS)

    async def put_back(self, jobs: list[ParkedJob], kept_until_ms: int = 0) -> set[str]:
        """Schedule the jobs in Redis; the ids whose parked rows may go: put back now,
        or held by Redis already (put back by a mover that died before it could drop
        the row, or still being parked: then its parker finds the row gone and
        leaves the job in Redis). A key of another type under the job's name keeps
        the row, so the job is not lost."""
        replies = await self.store.put_back(jobs, self.clock.now_ms(), kept_until_ms)
        return {
            job.id
            for job, reply in zip(jobs, replies, strict=True)
            if not reply.startswith("=invalid")
        }

    async def park_far(self, limit: int) -> int:
        """Park the jobs waiting in the Redis schedule due beyond the horizon (a retry
        whose backoff reaches that far, a job enqueued while PostgreSQL was down), in
        pages of `limit`; how many were parked. Those that stay in Redis (a cron
        tick's, a malformed one, one that changed meanwhile) are passed over."""
        if self.horizon_s is None:
            return 0
        parked = 0
        for queue in await self.store.queue_names():
            parked += await self._park_far_in(self.store.queue(queue), limit)
        return parked

    async def _park_far_in(self, store: RedisStore, limit: int) -> int:
        assert self.horizon_s is not None
        now = self.clock.now_ms()
        after, skip, parked = now + int(self.horizon_s * 1000), 0, 0
        while ids := await store.far_waiting(after, skip, limit):
            pg = await self._pg()  # only once there is something to park
            if pg is None:
                return 0
            done = await self._park(pg, store, await store.parkable(ids, now), now)
            parked += len(done)
            skip += len(ids) - len(done)
            if len(ids) < limit:
                break
        return parked

    async def park_again(self, job_ids: Sequence[str]) -> set[str]:
        """Park the jobs an update moved beyond the horizon; the ids parked. With
        Postgres out of reach they stay in Redis, which is no less correct: the
        update itself is done (and a later scan parks them)."""
        if self.horizon_s is None or not job_ids:
            return set()
        try:
            pg = await self._pg()
            if pg is None:
                return set()
            parked: set[str] = set()
            for queue, ids in (await self.store.route(job_ids)).items():
                view = self.store.queue(queue)
                rows = await view.parkable(ids)  # its own request's follow-up: kept or not
                parked |= await self._park(pg, view, rows, self.clock.now_ms())
            return parked
        except StoreUnavailable as exc:
            if exc.server != "postgres":
                raise
        return set()

    async def _park(
        self, pg: PgParking, store: RedisStore, rows: Sequence[ParkedRow], now: int
    ) -> set[str]:
        """Park these waiting jobs of Redis that are due beyond the horizon: written to
        PostgreSQL first, then taken out of Redis while their rows are held (a job
        whose row was there already, or whose seq moved on, stays in Redis)."""
        far = [row for row in rows if self.beyond(row.due_ms, now)]
        if not far:
            return set()
        written = await pg.park(far, {})
        seqs = {row.id: row.seq for row in far if row.id in written}

        async def take(held: dict[str, int]) -> set[str]:
            replies = await store.take_parked(held, self.origin, now)
            return {i for i, reply in zip(held, replies, strict=True) if reply.startswith("ok:")}

        return await pg.take_out(seqs, take)


def _parked_row(job: NewJob) -> ParkedRow:
    """The job as PostgreSQL keeps it parked; a chosen id stays marked as such when it
    is put back (enqueue.lua writes the element's extra fields)."""
    extra = {**job.extra, **parked_fields(job.queue, job.priority)}
    if job.chosen_id:
        extra["chosen_id"] = "1"
    element = orjson.dumps(job_element(replace(job, extra=extra))).decode()
    return ParkedRow(job.id, job.due_at_ms, 1, 0, element, State.SCHEDULED)
