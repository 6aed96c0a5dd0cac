"""Retired ids: what the reused-id rule needs, kept in Redis so that enqueue never
asks PostgreSQL.

A job id names one job for as long as its history is kept. Redis forgets a finished
job `keep_finished` after PostgreSQL recorded it (and a parked job waits only in
PostgreSQL), so an id chosen by a caller could name a job that only PostgreSQL
remembers. Rather than look every chosen id up in PostgreSQL (a round trip on the hot
path, and no enqueue at all while PostgreSQL is down), Redis keeps the ids of such
jobs in one sorted set a queue ({prefix}:retired for the default queue; format in
lua/lib.lua), in the queue's slot where enqueue.lua reads it:

- forget.lua retires a job whose caller chose its id as it gives it its expiry,
  delete.lua as it deletes one, park.lua and the client's parking as they park one;
  generated ids are random and never meet an old one, so they are not kept;
- enqueue.lua refuses a chosen id that is retired, as it refuses one Redis holds;
- the history keeper trims the ids whose history it dropped (older than `[history]
  keep`), and, once per key prefix, fills the record from PostgreSQL (every kept job
  that Redis may have forgotten, chosen or not, since the history does not say), so
  that jobs forgotten before the record existed count too.

Until the fill is done the client still asks PostgreSQL; from then on, Redis alone.
The record's cost: one sorted-set member (about 60 bytes plus the id) per job with a
chosen id whose history is kept and that Redis no longer holds.
"""

from __future__ import annotations

from runner.clock import Clock
from runner.logs import get_logger
from runner.store import PgStore, RedisStore

log = get_logger()

FILL_PAGE = 5000  # kept jobs read from PostgreSQL and retired per step of a fill


class RetiredIds:
    """The history keeper's part in the record: fill it once, trim it every pass."""

    def __init__(self, store: RedisStore, pg: PgStore, clock: Clock) -> None:
        self.store = store
        self.pg = pg
        self.clock = clock

    async def upkeep(self, keep_s: float | None) -> None:
        if not await self.store.retired_filled():
            await self.fill()
        if keep_s is not None:
            before = self.clock.now_ms() - int(keep_s * 1000)
            trimmed = 0
            for queue in await self.store.queue_names():
                trimmed += await self.store.queue(queue).trim_retired(before)
            if trimmed:
                log.info("retired ids trimmed", ids=trimmed, keep_s=keep_s)

    async def fill(self) -> int:
        """Retire every kept job that Redis does not hold; safe to repeat, and to run on
        several daemons at once (an id already retired keeps its entry)."""
        after, added, started = "", 0, self.clock.now_ms()
        while page := await self.pg.retired_page(after, FILL_PAGE):
            for queue in sorted({row[3] for row in page}):
                ids = [(i, at, state) for i, at, state, q in page if q == queue]
                added += await self.store.queue(queue).retire(ids, only_new=True)
            after = page[-1][0]
        await self.store.mark_retired_filled(started)
        log.info("retired ids filled from the history", ids=added)
        return added
