"""`runner show`: one job's live state (Redis) and recorded history (Postgres)."""

from __future__ import annotations

from typing import Any

from runner.client.client import Client
from runner.config.settings import Settings
from runner.jobs import rfc3339


def job_document(job: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON shape scripts rely on (see DESIGN: `runner show ID --json`)."""
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "priority": job.priority,
        "state": job.state,
        "attempt": job.attempt,
        "due_at": rfc3339(job.due_at_ms),
        "args": job.args,
        "kwargs": job.kwargs,
        "result": job.result,
        "error": job.error,
        **({"extra": job.extra} if job.extra else {}),
        "parked": job.parked,
        "history": history,
    }


async def show_document(settings: Settings, job_id: str) -> dict[str, Any]:
    """The job's document: its live state and its recorded history."""
    async with await Client.connect(settings) as client:
        job = await client.get(job_id)
        history = await client.history(job_id)
    return job_document(job, history)
