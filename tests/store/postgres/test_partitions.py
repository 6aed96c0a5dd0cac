"""runner_job_events partitioned by day (migration 003): history kept across the
migration, each event in its day's partition, none lost for want of one, replays
harmless."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from runner.jobs import Event
from runner.store.postgres.migrate import apply_migration, migrate
from runner.store.postgres.partitions import create_partitions, day_partition, partitions, utc_day
from runner.store.postgres.queries import migrations
from runner.store.postgres.store import PgStore, events_json
from tests.real_servers import Servers

DAY_MS = 86_400_000
LEDGER = """
CREATE TABLE runner_schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def job_events(job_id: str, at_ms: int, final: str = "succeeded") -> list[Event]:
    created = f'{{"task":"echo","args":[1],"kwargs":{{}},"due_at":{at_ms}}}'
    return [
        Event(job_id, 1, "", "scheduled", at_ms, "client", 0, created),
        Event(job_id, 2, "scheduled", "running", at_ms + 5, "d1", 1, "{}"),
        Event(job_id, 3, "running", final, at_ms + 9, "d1", 1, '{"result":{"ok":true}}'),
    ]


async def where_events_are(pg: PgStore) -> dict[tuple[str, int], str]:
    rows = await pg.pool.fetch(
        "SELECT job_id, seq, tableoid::regclass::text AS part FROM runner_job_events"
    )
    return {(r["job_id"], r["seq"]): r["part"] for r in rows}


@pytest.fixture
async def database_at_002(servers: Servers) -> AsyncIterator[str]:
    """A database of this test's own, migrated up to 002 only (as before partitions)."""
    name = f"runner_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(servers.admin_database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    url = servers.database_url(name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(LEDGER)
        for version, file, sql in migrations():
            if version <= 2:
                await apply_migration(conn, version, file, sql)
    finally:
        await conn.close()
    yield url
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.close()


async def fill_before_003(conn: Any, now_ms: int) -> None:
    """Jobs and events as 002's schema holds them: 10 days old, an hour old, a job
    still waiting, and an event dated a year ahead (a clock far off)."""
    events = [
        *job_events("old", now_ms - 10 * DAY_MS),
        *job_events("recent", now_ms - 3_600_000, final="failed"),
        Event("waiting", 1, "", "scheduled", now_ms - 5 * DAY_MS, "client", 0, "{}"),
        Event("ahead", 1, "", "scheduled", now_ms + 365 * DAY_MS, "client", 0, "{}"),
    ]
    await conn.executemany(
        "INSERT INTO runner_job_events VALUES ($1, $2, NULLIF($3, ''), $4,"
        " to_timestamp($5 / 1000.0), $6, $7, $8::jsonb)",
        events,
    )
    await conn.execute(
        "INSERT INTO runner_jobs (id, task, state, attempt, seq, args, created_at, updated_at)"
        " SELECT job_id, 'echo', to_state, attempt, seq, '[1]', at, at FROM runner_job_events e"
        " WHERE seq = (SELECT max(seq) FROM runner_job_events WHERE job_id = e.job_id)"
    )


async def job_row(conn: Any, job_id: str) -> dict[str, Any]:
    """runner_jobs' row as it is (the store's reads expect every later migration)."""
    return dict(await conn.fetchrow("SELECT * FROM runner_jobs WHERE id = $1", job_id))


async def test_migration_keeps_every_event_and_job_readable(database_at_002: str) -> None:
    """From 002 with history written: after 003 every job reads back as before, the old
    table is one partition (no copy), and the event dated ahead moved out of it."""
    now_ms = int(time.time() * 1000)
    conn = await asyncpg.connect(database_at_002)
    pg = await PgStore.connect(database_at_002)
    try:
        await fill_before_003(conn, now_ms)
        ids = ("old", "recent", "waiting", "ahead")
        before = {i: (await pg.job_history(i), await job_row(conn, i)) for i in ids}
        applied = await migrate(conn)
        assert applied[:2] == ["003_history_partitions.sql", "004_parked_jobs.sql"]
        after = {i: (await pg.job_history(i), await job_row(conn, i)) for i in ids}
        for i in ids:  # later migrations add columns (007: queue, priority), all NULL here
            added = {k: v for k, v in after[i][1].items() if k not in before[i][1]}
            assert set(added.values()) <= {None}
            after[i] = (after[i][0], {k: after[i][1][k] for k in before[i][1]})
        assert after == before and len(before["old"][0]) == 3
        where = await where_events_are(pg)
        assert {where[("old", 1)], where[("recent", 3)]} == {"runner_job_events_legacy"}
        assert where[("ahead", 1)] == "runner_job_events_default"
        legacy = next(p for p in await partitions(conn) if p.name == "runner_job_events_legacy")
        assert legacy.lower is None
        assert legacy.upper == day_partition(utc_day(now_ms / 1000) + timedelta(days=1))[1]
        # Replaying events written before the migration inserts nothing new.
        await pg.write_events([events_json(job_events("old", now_ms - 10 * DAY_MS))])
        assert await pg.pool.fetchval("SELECT count(*) FROM runner_job_events") == 8
        assert await migrate(conn) == []
    finally:
        await pg.close()
        await conn.close()


async def test_new_install_has_no_legacy_partition(pg: PgStore) -> None:
    """A database migrated from nothing: the empty old table is dropped, and the days
    from yesterday to three days ahead each have a partition, beside the DEFAULT one."""
    found = {p.name: p for p in await partitions(pg.pool)}
    today = utc_day(time.time())
    expected = {day_partition(today + timedelta(days=n))[0] for n in range(-1, 4)}
    assert expected <= set(found)
    assert "runner_job_events_legacy" not in found
    assert found["runner_job_events_default"].default


async def test_events_land_in_their_days_partition(pg: PgStore) -> None:
    """Each event is stored in the partition of its UTC day, and reads back through the
    parent table as one history."""
    now_ms = int(time.time() * 1000)
    days = {"yesterday": -1, "today": 0, "in two days": 2}
    for job_id, offset in days.items():
        await pg.write_events([events_json(job_events(job_id, now_ms + offset * DAY_MS))])
    where = await where_events_are(pg)
    for job_id, offset in days.items():
        at = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(days=offset)
        assert where[(job_id, 1)] == day_partition(at.date())[0]
        history = await pg.job_history(job_id)
        assert [h["seq"] for h in history] == [1, 2, 3]


async def test_an_event_far_outside_the_partitions_is_kept(pg: PgStore) -> None:
    """Events dated 1990 and 2100 (clocks far off, entries another program wrote) go to
    the DEFAULT partition; once their day gets a partition, they move into it."""
    past = int(datetime(1990, 5, 1, tzinfo=UTC).timestamp() * 1000)
    future = int(datetime(2100, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)
    await pg.write_events([events_json(job_events("past", past))])
    await pg.write_events([events_json(job_events("future", future))])
    where = await where_events_are(pg)
    assert {where[("past", 3)], where[("future", 1)]} == {"runner_job_events_default"}
    async with pg.pool.acquire() as conn:
        assert await create_partitions(conn, [date(2100, 1, 1)]) == ["runner_job_events_21000101"]
        assert await create_partitions(conn, [date(2100, 1, 1)]) == []
    where = await where_events_are(pg)
    assert where[("future", 2)] == "runner_job_events_21000101"
    assert where[("past", 1)] == "runner_job_events_default"
    assert [h["seq"] for h in await pg.job_history("future")] == [1, 2, 3]
    job = await pg.get_job("future")
    assert job is not None and job["state"] == "succeeded"


async def test_replays_insert_each_event_once_in_every_partition(pg: PgStore) -> None:
    """The same entries written twice, spread over a daily partition and the DEFAULT
    one: one row per (job, seq)."""
    now_ms = int(time.time() * 1000)
    far = int(datetime(1995, 1, 1, tzinfo=UTC).timestamp() * 1000)
    entries = [events_json(job_events("a", now_ms)), events_json(job_events("b", far))]
    await pg.write_events(entries)
    await pg.write_events(entries)
    await pg.write_events(entries[::-1])
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_job_events") == 6
    assert len(set(await where_events_are(pg))) == 6
