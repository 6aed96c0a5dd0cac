"""Schema migrations: numbered .sql files applied once each, under an advisory lock.

Several daemons may start at the same moment; the transaction-scoped advisory
lock makes the second wait for the first and then find nothing left to do.
Afterwards, the history's partitions for the days around now are made (see
pg_history.py), so `runner migrate` leaves a database ready for the recorder.
"""

from __future__ import annotations

import time
from typing import Any

from runner.store.pg_history import create_partitions, days_around
from runner.store.sql import migrations

_LOCK_KEY = 0x72756E6E6572  # "runner"

_LEDGER = """
CREATE TABLE IF NOT EXISTS runner_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conn: Any, now: float | None = None) -> list[str]:
    """Apply pending migrations, then make the partitions of the days around `now`
    (default: the system clock); returns the migrations applied (empty when up to date)."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_LEDGER)
        done = {
            r["version"] for r in await conn.fetch("SELECT version FROM runner_schema_migrations")
        }
        for version, name, sql in migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO runner_schema_migrations (version, name) VALUES ($1, $2)",
                version,
                name,
            )
            applied_now.append(name)
    await create_partitions(conn, days_around(time.time() if now is None else now))
    return applied_now
