"""The daily partitions of runner_job_events: their names and ranges, making the days
around now (at migration and at every history pass) and dropping old ones.

A wait for a table lock (creating, attaching or dropping a partition) is bounded by
LOCK_TIMEOUT: the recorder's inserts queue behind such a lock, so it gives up rather
than hold them, and the next pass tries again. Making partitions takes the history
upkeep's lock (LOCK_KEY), so `runner migrate` and a daemon's pass never race.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from runner.store.postgres.queries import query

LOCK_KEY = 0x72756E6E6572 + 1  # migrate.py's key + 1: "runner", history upkeep
LOCK_TIMEOUT = "5s"
DAYS_BEHIND = 1  # yesterday too: events of a recorder's backlog still find their day
DAYS_AHEAD = 3  # tomorrow and the two days after


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
