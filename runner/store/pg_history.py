"""Bounded history in PostgreSQL: daily partitions of runner_job_events made ahead of
time, whole days dropped once older than the history kept, and finished rows of
runner_jobs removed in short batches.

Every daemon does this (runner/history_keeper.py), so it must be safe to run from
several at once: a session advisory lock lets one daemon do a pass while the others
skip theirs, and `runner migrate` makes partitions only while no pass is running. A wait
for a table lock (creating, attaching or dropping a partition) is bounded by
LOCK_TIMEOUT: the recorder's inserts queue behind such a lock, so it gives up
rather than hold them, and the next pass tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from runner.states import ENDED
from runner.store.failures import on_postgres
from runner.store.sql import query

if TYPE_CHECKING:
    from runner.store.pg_store import PgStore

LOCK_KEY = 0x72756E6E6572 + 1  # migrate.py's key + 1: "runner", history upkeep
LOCK_TIMEOUT = "5s"
DAYS_BEHIND = 1  # yesterday too: events of a recorder's backlog still find their day
DAYS_AHEAD = 3  # tomorrow and the two days after
REMOVE_BATCH = 5_000
# Rows of runner_jobs that nothing will change any more (`deleted` is a history's
# last event; a failed or cancelled job may still be retried while Redis holds it).
FINISHED = sorted(str(state) for state in ENDED)


@dataclass(frozen=True)
class Partition:
    """A partition of runner_job_events and the times it covers, [lower, upper)."""

    name: str
    lower: datetime | None  # None: from the beginning of time, or the DEFAULT partition
    upper: datetime | None  # None: to the end of time, or the DEFAULT partition
    default: bool = False

    def overlaps(self, lower: datetime, upper: datetime) -> bool:
        if self.default:
            return False
        return (self.lower is None or self.lower < upper) and (
            self.upper is None or lower < self.upper
        )


@dataclass
class Kept:
    """What one pass did: partitions created and dropped, rows removed."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    stray_events_removed: int = 0
    jobs_removed: int = 0

    def changed_anything(self) -> bool:
        return bool(self.created or self.dropped or self.stray_events_removed or self.jobs_removed)


def utc_day(moment: float) -> date:
    return datetime.fromtimestamp(moment, UTC).date()


def day_partition(day: date) -> tuple[str, datetime, datetime]:
    """The name and range of one UTC day's partition."""
    lower = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return f"runner_job_events_{day:%Y%m%d}", lower, lower + timedelta(days=1)


def days_around(now: float) -> list[date]:
    today = utc_day(now)
    return [today + timedelta(days=n) for n in range(-DAYS_BEHIND, DAYS_AHEAD + 1)]


async def partitions(conn: Any) -> list[Partition]:
    rows = await conn.fetch(query("history_partitions"))
    return [Partition(r["name"], r["lower"], r["upper"], r["is_default"]) for r in rows]


async def create_partitions(conn: Any, days: Sequence[date]) -> list[str]:
    """Create the partitions of `days` that no partition covers yet, in one transaction
    under the upkeep lock (taken here, or already held by this session); returns the
    names created. While another session holds the lock, nothing is done here: that
    session is making these very partitions (a pass begins with them), and a daemon
    starting must not wait for another's long pass."""
    created = []
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return []
        existing = await partitions(conn)
        for day in days:
            name, lower, upper = day_partition(day)
            if any(p.overlaps(lower, upper) for p in existing):
                continue
            await conn.execute(
                query("history_create_partition").format(
                    name=name, lower=lower.isoformat(), upper=upper.isoformat()
                )
            )
            existing.append(Partition(name, lower, upper))
            created.append(name)
    return created


async def drop_partitions(conn: Any, before: datetime) -> list[str]:
    """Drop every partition that holds nothing newer than `before`, each in its own
    transaction (one that cannot get its lock leaves the others dropped)."""
    dropped = []
    for partition in await partitions(conn):
        if partition.default or partition.upper is None or partition.upper > before:
            continue
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            name = '"' + partition.name.replace('"', '""') + '"'
            await conn.execute(query("history_drop_partition").format(name=name))
        dropped.append(partition.name)
    return dropped


async def remove_finished_jobs(conn: Any, before: datetime, batch: int = REMOVE_BATCH) -> int:
    """Remove finished runner_jobs rows older than `before`, `batch` rows a statement."""
    removed = 0
    while True:
        status = await conn.execute(query("history_remove_jobs"), FINISHED, before, batch)
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
        return kept
