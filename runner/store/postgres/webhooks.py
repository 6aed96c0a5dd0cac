"""Webhook delivery attempts in PostgreSQL (runner_webhook_attempts, migration 006)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from runner.store.failures import on_postgres
from runner.store.postgres.queries import query

if TYPE_CHECKING:
    from runner.store.postgres.store import PgStore


class AttemptRow(NamedTuple):
    """One try at delivering one transition to one sink."""

    sink: str
    event_id: str
    job_id: str
    seq: int
    attempt: int
    at_ms: int
    daemon: str
    http_status: int | None
    error: str | None
    duration_ms: int
    outcome: str  # delivered, failed (to be retried) or dead


class WebhookAttempts:
    """The attempts' verbs, on the pool of a PgStore (read at each call)."""

    def __init__(self, pg: PgStore) -> None:
        self.pg = pg

    @on_postgres
    async def write(self, rows: Sequence[AttemptRow]) -> None:
        """Insert attempts in one statement; writing the same ones again adds nothing."""
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            await self.pg.pool.execute(query("write_webhook_attempts"), *columns)

    @on_postgres
    async def of_sink(self, sink: str, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = await self.pg.pool.fetch(query("webhook_attempts"), sink, limit)
        return [dict(row) for row in rows]
