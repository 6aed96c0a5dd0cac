"""Schema migrations: numbered .sql files applied once each, under an advisory lock.

Several daemons may start at the same moment; the advisory lock makes the second
wait for the first and then find nothing left to do. Each migration is applied
with its row in the ledger: in one transaction, or, for a migration whose first
line is NO_TRANSACTION, statement by statement outside any transaction, its row
written once the last one succeeded. That is how an index is built on a large
table (CREATE INDEX CONCURRENTLY, which cannot run in a transaction) without
making every write to it wait for the build. Such a migration must be safe to run
again from its start, since one cut short is not recorded: it drops what it
builds first (an interrupted build leaves an invalid index behind).

The lock is taken by polling pg_try_advisory_lock, not by waiting in
pg_advisory_lock: CREATE INDEX CONCURRENTLY waits for every transaction older
than its build, a waiting pg_advisory_lock included, and that one waits for the
lock this migration holds.

Afterwards, the history's partitions for the days around now are made (see
partitions.py), so `runner migrate` leaves a database ready for the recorder.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runner.store.postgres.partitions import create_partitions, days_around
from runner.store.postgres.queries import migrations

_LOCK_KEY = 0x72756E6E6572  # "runner"
_LOCK_POLL_S = 0.05
# A statement of a migration may build an index on millions of rows: far beyond the
# pool's command timeout, which is for a server that hangs.
_STATEMENT_TIMEOUT_S = 6 * 3600.0
NO_TRANSACTION = "-- runner: no transaction"

_LEDGER = """
CREATE TABLE IF NOT EXISTS runner_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_RECORD = "INSERT INTO runner_schema_migrations (version, name) VALUES ($1, $2)"


async def migrate(conn: Any, now: float | None = None) -> list[str]:
    """Apply pending migrations, then make the partitions of the days around `now`
    (default: the system clock); returns the migrations applied (empty when up to date)."""
    applied_now: list[str] = []
    await _lock(conn)
    try:
        await conn.execute(_LEDGER)
        done = {
            r["version"] for r in await conn.fetch("SELECT version FROM runner_schema_migrations")
        }
        for version, name, sql in migrations():
            if version not in done:
                await apply_migration(conn, version, name, sql)
                applied_now.append(name)
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    await create_partitions(conn, days_around(time.time() if now is None else now))
    return applied_now


async def apply_migration(conn: Any, version: int, name: str, sql: str) -> None:
    """Run one migration and record it in the ledger (which must exist)."""
    if not outside_a_transaction(sql):
        async with conn.transaction():
            await conn.execute(sql, timeout=_STATEMENT_TIMEOUT_S)
            await conn.execute(_RECORD, version, name)
        return
    for statement in statements(sql):
        await conn.execute(statement, timeout=_STATEMENT_TIMEOUT_S)
    await conn.execute(_RECORD, version, name)


def outside_a_transaction(sql: str) -> bool:
    return sql.startswith(NO_TRANSACTION + "\n")


def statements(sql: str) -> list[str]:
    """The statements of a migration run outside a transaction: plain ones, each ending
    with ';' (comment lines left out). ValueError for a $$ body, where a ';' does not
    end the statement."""
    if "$$" in sql:
        raise ValueError("a migration run outside a transaction cannot hold a $$ body")
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [text.strip() for text in "\n".join(lines).split(";") if text.strip()]


async def _lock(conn: Any) -> None:
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
            return
        await asyncio.sleep(_LOCK_POLL_S)
