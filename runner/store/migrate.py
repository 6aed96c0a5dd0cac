"""Schema migrations: numbered .sql files applied once each, under an advisory lock.

Several daemons may start at the same moment; the transaction-scoped advisory
lock makes the second wait for the first and then find nothing left to do.
"""

from __future__ import annotations

from typing import Any

from runner.store.sql import migrations

_LOCK_KEY = 0x72756E6E6572  # "runner"

_LEDGER = """
CREATE TABLE IF NOT EXISTS runner_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conn: Any) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
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
    return applied_now
