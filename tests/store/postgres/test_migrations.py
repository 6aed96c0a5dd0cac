"""Migration 002 builds its indexes with CREATE INDEX CONCURRENTLY, outside any
transaction: writes to runner_jobs go on while an index builds, and a build that was
interrupted is built again by the next migration. Migration 012 changes the keys of
what the recorder writes on a database that holds jobs."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from runner.states import State
from runner.store.postgres.migrate import (
    apply_migration,
    migrate,
    outside_a_transaction,
    statements,
)
from runner.store.postgres.queries import migrations
from runner.store.postgres.store import PgStore
from tests.real_servers import Servers
from tests.waiting import eventually

# The listing's indexes once every migration ran: 002's with a state, and 012's.
LISTING_INDEXES = {
    "runner_jobs_state_listed",
    "runner_jobs_state_task_listed",
    "runner_jobs_other_states_listed",
}
# Every migration after 001, as the ledger names them.
LATER = [name for version, name, _ in migrations() if version > 1]
LEDGER = """
CREATE TABLE runner_schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@pytest.fixture
async def database_at_001(servers: Servers) -> AsyncIterator[str]:
    """A database of this test's own with 001 alone applied, as an install from before
    the listing indexes."""
    name = f"runner_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(servers.admin_database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    url = servers.database_url(name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(LEDGER)
        await apply_migration(conn, *migrations()[0])
    finally:
        await conn.close()
    yield url
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.close()


async def _insert_job(conn: Any, job_id: str) -> None:
    await conn.execute(
        "INSERT INTO runner_jobs (id, task, state, seq, updated_at)"
        " VALUES ($1, 't', 's', 1, now())",
        job_id,
    )


async def _waiting_lock(conn: Any, pid: int) -> dict[str, Any] | None:
    """The lock the backend `pid` waits for, with the statement it runs; None if none.
    Asked outside a transaction: inside one, pg_stat_activity stays as first read."""
    row = await conn.fetchrow(
        "SELECT l.locktype, l.relation::regclass::text AS relation, a.query,"
        " a.backend_xid IS NOT NULL AS holds_xid, a.state"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.pid = $1 AND NOT l.granted",
        pid,
    )
    return None if row is None else dict(row)


async def _waiting_build(conn: Any, pid: int) -> dict[str, Any] | None:
    """The lock the backend `pid` waits for in an index build run CONCURRENTLY; None
    while it waits for nothing, or in another statement (a moment's wait on the
    migrations' ledger as it starts is not what is looked for)."""
    lock = await _waiting_lock(conn, pid)
    builds = ("CREATE INDEX CONCURRENTLY", "DROP INDEX CONCURRENTLY")
    return lock if lock is not None and lock["query"].startswith(builds) else None


async def _index_validity(conn: Any) -> dict[str, bool]:
    rows = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, indisvalid FROM pg_index"
        " WHERE indrelid = 'runner_jobs'::regclass"
    )
    return {row["name"]: row["indisvalid"] for row in rows}


async def test_index_builds_wait_for_writers_without_blocking_new_writes(
    database_at_001: str,
) -> None:
    """While migration 002 waits for a transaction that wrote to runner_jobs, it holds
    no lock that writers queue behind: it waits outside a transaction, in a statement
    run CONCURRENTLY, for that writer alone, and another insert goes through at once.
    Once the writer commits the migration completes, every index valid; a second run
    has nothing to do."""
    holder, migrating, writer = [await asyncpg.connect(database_at_001) for _ in range(3)]
    migration: asyncio.Task[list[str]] | None = None
    try:
        await holder.execute("BEGIN")
        await _insert_job(holder, "open")
        migration = asyncio.create_task(migrate(migrating))
        pid = migrating.get_server_pid()
        lock = await eventually(
            lambda: _waiting_build(writer, pid), what="an index build waiting for the open write"
        )
        assert (lock["locktype"], lock["holds_xid"]) == ("virtualxid", False), lock
        await writer.execute("SET lock_timeout = '10s'")  # a blocked insert fails, not hangs
        await _insert_job(writer, "during the build")
        await holder.execute("COMMIT")
        async with asyncio.timeout(60):
            assert await migration == LATER
        validity = await _index_validity(writer)
        assert set(validity) >= LISTING_INDEXES and all(validity.values()), validity
        assert "runner_jobs_state_updated" not in validity  # 001's, dropped by 002
        assert await migrate(writer) == []
    finally:
        if migration is not None:
            migration.cancel()
        for conn in (holder, migrating, writer):
            await conn.close()


async def test_an_interrupted_index_build_is_built_again_by_the_next_migration(
    database_at_001: str,
) -> None:
    """A build cut short (its connection lost while it waited for a writer) leaves an
    invalid index under 002's name, and 002 unrecorded: the next migration drops it
    and builds it again, and every index ends valid."""
    holder, building, watcher = [await asyncpg.connect(database_at_001) for _ in range(3)]
    build: asyncio.Task[str] | None = None
    try:
        await holder.execute("BEGIN")
        await _insert_job(holder, "open")
        build = asyncio.create_task(
            building.execute(
                "CREATE INDEX CONCURRENTLY runner_jobs_listed ON runner_jobs"
                " ((COALESCE(created_at, updated_at)) DESC, id DESC)"
            )
        )
        pid = building.get_server_pid()
        await eventually(lambda: _waiting_lock(watcher, pid), what="the build waiting")
        await watcher.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
            await build
        await holder.execute("COMMIT")
        assert (await _index_validity(watcher))["runner_jobs_listed"] is False
        assert await migrate(watcher) == LATER
        validity = await _index_validity(watcher)
        assert set(validity) >= LISTING_INDEXES and all(validity.values()), validity
    finally:
        if build is not None:
            build.cancel()
        for conn in (holder, building, watcher):
            await conn.close()


def test_only_index_builds_run_outside_a_transaction_and_their_statements_are_plain() -> None:
    """A migration marked to run outside a transaction is run statement by statement,
    each ending with ';': 002, 008 and 010 alone are, and every statement of them builds
    or drops an index concurrently (so a run cut short can be run again from its start)."""
    outside = {name: sql for _, name, sql in migrations() if outside_a_transaction(sql)}
    counts = {"002_job_listing.sql": 10, "008_queue_listing.sql": 2,
              "010_workflow_index.sql": 2}  # fmt: skip
    assert list(outside) == list(counts)
    for name, count in counts.items():
        found = statements(outside[name])
        assert len(found) == count
        assert all(
            s.startswith(("CREATE INDEX CONCURRENTLY", "DROP INDEX CONCURRENTLY IF EXISTS"))
            for s in found
        )
    with pytest.raises(ValueError, match=r"\$\$"):
        statements("DO $$ BEGIN PERFORM 1; END $$;")


async def test_recording_keys_keep_every_job_listed_and_name_every_state(
    database_at_001: str,
) -> None:
    """012 on a database with jobs and history: ids and states compare in byte order,
    the history's time index is BRIN on every partition, the index of unknown states
    names exactly runner's states, and every job, one in a state runner does not know
    among them, is still listed and its history read."""
    conn = await asyncpg.connect(database_at_001)
    try:
        for version, name, sql in migrations()[1:]:
            if version < 12:
                await apply_migration(conn, version, name, sql)
        await _insert_job(conn, "b-odd")  # state 's'
        await conn.execute(
            "INSERT INTO runner_jobs (id, task, state, seq, updated_at, created_at)"
            " VALUES ('a-known', 't', 'failed', 1, now(), now() - interval '1 s')"
        )
        await conn.execute(
            "INSERT INTO runner_job_events (job_id, seq, to_state, at, attempt)"
            " VALUES ('a-known', 1, 'scheduled', now(), 0)"
        )
        assert await migrate(conn) == [name for v, name, _ in migrations() if v >= 12]
        collations = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE collation_name = 'C' AND table_name LIKE 'runner_job%'"
        )
        assert {(r["table_name"], r["column_name"]) for r in collations} >= {
            ("runner_jobs", "id"), ("runner_jobs", "state"), ("runner_jobs", "task"),
            ("runner_job_events", "job_id"),
        }  # fmt: skip
        methods = await conn.fetch(
            "SELECT DISTINCT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = c.relam JOIN pg_inherits h ON h.inhrelid = i.indrelid"
            " WHERE h.inhparent = 'runner_job_events'::regclass"
            " AND pg_get_indexdef(i.indexrelid) LIKE '%(at)%'"
        )
        assert [r["amname"] for r in methods] == ["brin"]
        predicate = await conn.fetchval(
            "SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
            " WHERE indexrelid = 'runner_jobs_other_states_listed'::regclass"
        )
        assert set(re.findall(r"[a-z]+", predicate.split("{")[1].split("}")[0])) == set(State)
        pg = await PgStore.connect(database_at_001, max_size=1)
        try:
            rows, _ = await pg.list_jobs(limit=10)
            assert [r["id"] for r in rows] == ["b-odd", "a-known"]
            assert [e["to_state"] for e in await pg.job_history("a-known")] == ["scheduled"]
        finally:
            await pg.close()
    finally:
        await conn.close()
