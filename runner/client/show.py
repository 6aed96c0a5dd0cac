"""`runner show`: one job's live state (Redis) and recorded history (Postgres)."""

from __future__ import annotations

from typing import Any

import orjson

from runner.client.client import Client
from runner.config.settings import Settings
from runner.jobs import rfc3339
from runner.states import WAITING, State


def job_document(
    job: Any, history: list[dict[str, Any]], waiting_for: str | None = None
) -> dict[str, Any]:
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
        "depends_on": _depends_on(job, history),
        "workflow": _enqueued_with(job, history, "workflow"),
        **({"waiting_for": waiting_for} if waiting_for else {}),
        "history": history,
    }


def _enqueued_with(job: Any, history: list[dict[str, Any]], name: str) -> Any:
    """An extra field the job was enqueued with: from its hash, or, once Redis forgot
    it, from its first event (the enqueue records them in PostgreSQL)."""
    value = job.extra.get(name)
    if value is None and history and isinstance(history[0].get("detail"), dict):
        value = history[0]["detail"].get(name)
    return value


def _depends_on(job: Any, history: list[dict[str, Any]]) -> list[str]:
    """The ids the job depends on (`after`, a JSON list)."""
    after = _enqueued_with(job, history, "after")
    try:
        ids = orjson.loads(after) if isinstance(after, str) else []
    except orjson.JSONDecodeError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []


async def show_document(settings: Settings, job_id: str) -> dict[str, Any]:
    """The job's document: its live state and its recorded history."""
    async with await Client.connect(settings) as client:
        job = await client.get(job_id)
        history = await client.history(job_id)
        waiting = await _waiting_for(client, job)
    return job_document(job, history, waiting)


async def _waiting_for(client: Client, job: Any) -> str | None:
    """Why a due job is not starting: maintenance mode, its task paused, a concurrency
    cap, a rate, or its key's turn (fair_key)."""
    if job.state == State.BLOCKED:
        left = job.extra.get("left", "?")
        return f"the jobs it depends on: {left} of them still going"
    if job.state not in WAITING:
        return None
    paused, maintenance = await client.store.paused_summary()
    if maintenance:
        return "maintenance mode: no daemon claims anything (runner resume --all)"
    if job.task in paused:
        return f"its task is paused (runner resume --task {job.task})"
    return await _held_by_limit(client, job)


async def _held_by_limit(client: Client, job: Any) -> str | None:
    group, cap = job.extra.get("cap_group"), job.extra.get("cap")
    running = await client.store.cap_wait(job.queue, group, job.id) if group else None
    if running is not None:
        return f"a concurrency slot: {running} of {cap} of {group!r} running"
    rated = job.extra.get("rate_group")
    wake = await client.store.rate_wait(job.queue, rated, job.id) if rated else None
    if wake is not None:
        return f"its rate ({rated!r}): the next start is allowed at {rfc3339(wake)}"
    fair, spec = job.extra.get("fair_group"), client.settings.tasks.get(job.task)
    turn = None
    if fair and spec is not None:
        turn = await client.store.turn_wait(job.queue, fair, spec.kind, job.id)
    if turn is not None:
        return (
            f"its key's turn ({fair!r}): {turn[0]} jobs of its key wait, and {turn[1]} keys "
            "take turns"
        )
    return None
