"""`runner status`: the whole system at a glance, for an operator or a script.

Live figures come from Redis (what is due now and how late, waiting, running and
on which daemon; which daemons sent a heartbeat lately, with what they say of
themselves; paused tasks and maintenance mode; what was set aside as malformed;
what the recorders have not written yet, what the sources took and dead-lettered;
each webhook sink's dead letters and backlog; per task with a cap, a rate or a fair
key, what runs and waits on it), counts per state and per task from
Postgres, in one query, and how many jobs wait there parked (`runner status`
counts them each time; the dashboard, which polls, leaves them out).
"""

from __future__ import annotations

from typing import Any

from runner.client.client import Client
from runner.client.limits import limits_document
from runner.client.webhooks import webhook_status
from runner.config.settings import Settings
from runner.jobs import rfc3339
from runner.store import per_state, read_source_figures


async def status_document(settings: Settings) -> dict[str, Any]:
    async with await Client.connect(settings) as client:
        return await status_of(client, await counted_now(client), parked=await parked_now(client))


async def parked_now(client: Client) -> dict[str, Any] | None:
    """How many jobs wait in Postgres (parked, see parking.py), and the soonest due."""
    pg = await client.history_store()
    if pg is None:
        return None
    jobs, soonest = await pg.parked_count()
    return {"jobs": jobs, "soonest_due": rfc3339(soonest)}


async def counted_now(client: Client) -> dict[str, dict[str, int]]:
    """Jobs per task and state, counted in Postgres now (a scan of runner_jobs)."""
    pg = await client.history_store()
    return await pg.task_state_counts() if pg else {}


async def status_of(
    client: Client, tasks: dict[str, dict[str, int]], **extra: Any
) -> dict[str, Any]:
    """The status document from the live figures in Redis and `tasks`, the counts per
    task and state from Postgres (counted now, or kept a while by `runner web`)."""
    now = client.clock.now_ms()
    # A live daemon sends a heartbeat every third of a lease. One whose last heartbeat
    # is older than a lease has missed three: dead (killed, or its host lost) or cut
    # off, and its jobs' leases have run out for other daemons to take. A SIGKILL
    # leaves its heartbeat in Redis: only this filter keeps it off the list.
    alive_since = now - int(client.settings.lease_ttl * 1000)
    live = await client.store.overview(now, alive_since)
    # Where the set-aside jobs and entries are, for an operator who goes and looks.
    live["set_aside"] = {**live["set_aside"], **client.store.set_aside_keys()}
    # Each configured source: what every daemon's reader did, and if it is held back.
    live["sources"] = await read_source_figures(client.store, sorted(client.settings.sources), now)
    live["webhooks"] = await webhook_status(client)
    # Each task with a cap, a rate or a fair key: what runs and waits on it.
    live["limits"] = limits_document(client.settings.tasks, await client.store.limit_groups())
    return {"at": rfc3339(now), "states": per_state(tasks), "tasks": tasks, **extra, **live}
