"""`runner workflow WF`: the jobs of one workflow and their states.

The graph is read from PostgreSQL (each job's row names its workflow and the jobs it
depends on, migration 009), so it can be read after Redis forgot it; each job's state
is Redis's where Redis still holds it (live), else the recorded one. A job enqueued
a moment ago may not be recorded yet: the recorder writes in batches.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from runner.client.client import Client
from runner.config.settings import Settings
from runner.errors import UsageError

MOST_JOBS = 100_000


async def workflow_document(settings: Settings, workflow_id: str) -> dict[str, Any]:
    async with await Client.connect(settings) as client:
        return await workflow_of(client, workflow_id)


async def workflow_of(client: Client, workflow_id: str) -> dict[str, Any]:
    pg = await client.history_store()
    if pg is None:
        raise UsageError("reading a workflow needs PostgreSQL: this client has none")
    rows = await pg.workflow_jobs(workflow_id, MOST_JOBS)
    if not rows:
        raise UsageError(
            f"no recorded job belongs to workflow {workflow_id!r}: check the id (a job "
            "enqueued a moment ago is recorded within a second)"
        )
    live = await client.store.job_states([row["id"] for row in rows])
    jobs = [
        {"id": r["id"], "task": r["task"], "state": live.get(r["id"], r["state"]),
         "depends_on": r["depends_on"], "error": r["error"]}
        for r in rows
    ]  # fmt: skip
    return {
        "workflow": workflow_id,
        "states": dict(Counter(job["state"] for job in jobs)),
        "jobs": jobs,
    }
