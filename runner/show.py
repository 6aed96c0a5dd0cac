"""`runner show`: one job's live state (Redis) and recorded history (Postgres)."""

from __future__ import annotations

from typing import Any

import orjson

from runner.client import Client
from runner.config import Settings
from runner.jobs import rfc3339


def job_document(job: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON shape scripts rely on (see DESIGN: `runner show ID --json`)."""
    return {
        "id": job.id,
        "task": job.task,
        "state": job.state,
        "attempt": job.attempt,
        "due_at": rfc3339(job.due_at_ms),
        "args": job.args,
        "kwargs": job.kwargs,
        "result": job.result,
        "error": job.error,
        **({"extra": job.extra} if job.extra else {}),
        "history": [
            {
                "seq": h["seq"],
                "from_state": h["from_state"],
                "to_state": h["to_state"],
                "at": rfc3339(h["at_ms"]),
                "daemon": h["daemon"],
                "attempt": h["attempt"],
                "detail": h["detail"],
            }
            for h in history
        ],
    }


def _text(doc: dict[str, Any]) -> str:
    def dump(value: Any) -> str:
        return orjson.dumps(value).decode()

    lines = [
        f"job {doc['id']}  task {doc['task']}",
        f"  state    {doc['state']} (attempt {doc['attempt']})",
        f"  due at   {doc['due_at'] or '-'}",
        f"  args     {dump(doc['args'])}   kwargs {dump(doc['kwargs'])}",
        f"  result   {dump(doc['result']) if doc['result'] is not None else '-'}",
        f"  error    {doc['error'] or '-'}",
        "history (Postgres):",
    ]
    for h in doc["history"]:
        detail = {k: v for k, v in (h["detail"] or {}).items() if k not in ("args", "kwargs")}
        lines.append(
            f"  {h['seq']:>3}  {h['at']}  {h['from_state'] or '-':>9} -> {h['to_state']:<9}"
            f"  attempt {h['attempt']}  {h['daemon'] or ''}  {dump(detail) if detail else ''}"
        )
    if not doc["history"]:
        lines.append("  (nothing recorded yet)")
    return "\n".join(lines)


async def show_job(settings: Settings, job_id: str, as_json: bool) -> str:
    async with await Client.connect(settings) as client:
        job = await client.get(job_id)
        history = await client.history(job_id)
    doc = job_document(job, history)
    return orjson.dumps(doc).decode() if as_json else _text(doc)
