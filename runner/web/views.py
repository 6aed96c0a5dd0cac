"""The read-only documents the API serves, built on the server's one Client.

`runner status` builds its document with a client of its own (runner.client.status); a
server answering the dashboard every few seconds must not open a Redis connection
and a Postgres pool per request, so the same document is built here from the
process's client, with the same store calls and the same shape; its counts per
task and state are kept between requests (counts.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.client.client import Client
from runner.client.status import counted_now, status_of
from runner.errors import UsageError
from runner.jobs import rfc3339
from runner.web.counts import TaskCounts


def task_counter(client: Client) -> TaskCounts:
    """The kept per-task counts (counts.py), read through the client's Postgres."""
    return TaskCounts(lambda: counted_now(client))


async def status_of_web(client: Client, counts: TaskCounts) -> dict[str, Any]:
    """The `runner status --json` document, with `counted_at`: when the per-task and
    per-state counts (from Postgres, kept a few seconds at most) were taken, and
    `configured_tasks`: every task the config declares, so that the dashboard lists
    (and can pause) a task before its first job."""
    tasks, counted_at = await counts.get()
    return await status_of(
        client, tasks, counted_at=rfc3339(int(counted_at * 1000)),
        configured_tasks=sorted(client.settings.tasks),
    )  # fmt: skip


async def throughput_of(client: Client, minutes: int) -> dict[str, Any]:
    """{"buckets": [...]}: one per minute of the last `minutes`, oldest first."""
    pg = await client.history_store()
    if pg is None:
        raise UsageError("this server has no Postgres connection to read throughput from")
    now = datetime.fromtimestamp(client.clock.now(), UTC)
    return {"minutes": minutes, "buckets": await pg.throughput(minutes, now)}
