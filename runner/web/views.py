"""The read-only documents the API serves, built on the server's one Client.

`runner status` builds its document with a client of its own (runner.status); a
server answering the dashboard every few seconds must not open a Redis connection
and a Postgres pool per request, so the same document is built here from the
process's client, with the same store calls and the same shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.client import Client
from runner.errors import UsageError
from runner.jobs import rfc3339
from runner.store.pg_status import per_state, task_state_counts
from runner.store.pg_throughput import throughput


async def status_of(client: Client) -> dict[str, Any]:
    """The `runner status --json` document."""
    now = client.clock.now_ms()
    # A live daemon renews every third of a lease: two leases of silence is dead.
    alive_since = now - int(2 * client.settings.lease_ttl * 1000)
    live = await client.store.overview(now, alive_since)
    pg = await client.history_store()
    tasks = await task_state_counts(pg.pool) if pg else {}
    return {"at": rfc3339(now), "states": per_state(tasks), "tasks": tasks, **live}


async def throughput_of(client: Client, minutes: int) -> dict[str, Any]:
    """{"buckets": [...]}: one per minute of the last `minutes`, oldest first."""
    pg = await client.history_store()
    if pg is None:
        raise UsageError("this server has no Postgres connection to read throughput from")
    now = datetime.fromtimestamp(client.clock.now(), UTC)
    return {"minutes": minutes, "buckets": await throughput(pg.pool, minutes, now)}
