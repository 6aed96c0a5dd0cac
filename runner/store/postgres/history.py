"""Bounded history in PostgreSQL: daily partitions of runner_job_events made ahead of
time, whole days dropped once older than the history kept, and finished rows of
runner_jobs removed in short batches.

Every daemon does this (runner/daemon/history_keeper.py), so it must be safe to run from
several at once: a session advisory lock lets one daemon do a pass while the others
skip theirs, and `runner migrate` makes partitions only while no pass is running. A wait
for a table lock (creating, attaching or dropping a partition) is bounded by
LOCK_TIMEOUT: the recorder's inserts queue behind such a lock, so it gives up
rather than hold them, and the next pass tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runner.states import ENDED
from runner.store.failures import on_postgres
from runner.store.postgres.partitions import (
    LOCK_KEY,
    create_partitions,
    day_partition,
    days_around,
    drop_partitions,
)
from runner.store.postgres.queries import query

if TYPE_CHECKING:
    from runner.store.postgres.store import PgStore

REMOVE_BATCH = 5_000
# Rows of runner_jobs that nothing will change any more (`deleted` is a history's
# last event; a failed or cancelled job may still be retried while Redis holds it).
FINISHED = sorted(str(state) for state in ENDED)


@dataclass
class Kept:
    """What one pass did: partitions created and dropped, rows removed."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    stray_events_removed: int = 0
    jobs_removed: int = 0
    attempts_removed: int = 0  # webhook delivery attempts

    def changed_anything(self) -> bool:
        return bool(
            self.created or self.dropped or self.stray_events_removed or self.jobs_removed
            or self.attempts_removed
        )  # fmt: skip


async def remove_finished_jobs(conn: Any, before: datetime, batch: int = REMOVE_BATCH) -> int:
    """Remove finished runner_jobs rows older than `before`, `batch` rows a statement."""
    removed = 0
    while True:
        status = await conn.execute(query("history_remove_jobs"), FINISHED, before, batch)
        count = int(status.split()[-1])  # "DELETE n"
        removed += count
        if count < batch:
            return removed


async def remove_old_attempts(conn: Any, before: datetime, batch: int = REMOVE_BATCH) -> int:
    """Remove webhook delivery attempts older than `before`, `batch` rows a statement:
    they are history too, kept as long as the rest."""
    removed = 0
    while True:
        status = await conn.execute(query("history_remove_attempts"), before, batch)
        count = int(status.split()[-1])  # "DELETE n"
        removed += count
        if count < batch:
            return removed


class HistoryStore:
    """The verbs of history upkeep, on the pool of a PgStore (read at each call)."""

    def __init__(self, pg: PgStore) -> None:
        self.pg = pg

    @on_postgres
    async def keep(self, now: float, keep: float | None, batch: int = REMOVE_BATCH) -> Kept | None:
        """One pass: partitions ahead; with `keep` (seconds), drop what is older. None
        when another daemon holds the upkeep lock (it is doing this very pass)."""
        async with self.pg.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                return None
            try:
                return await self._pass(conn, now, keep, batch)
            finally:
                if not conn.is_closed():
                    await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)

    async def _pass(self, conn: Any, now: float, keep: float | None, batch: int) -> Kept:
        if keep is None:
            return Kept(created=await create_partitions(conn, days_around(now)))
        before = datetime.fromtimestamp(now - keep, UTC)
        # With a keep under a day, yesterday's partition would be made only to go.
        days = [day for day in days_around(now) if day_partition(day)[2] > before]
        kept = Kept(created=await create_partitions(conn, days))
        kept.dropped = await drop_partitions(conn, before)
        status = await conn.execute(query("history_prune_default"), before)
        kept.stray_events_removed = int(status.split()[-1])
        kept.jobs_removed = await remove_finished_jobs(conn, before, batch)
        kept.attempts_removed = await remove_old_attempts(conn, before, batch)
        return kept
