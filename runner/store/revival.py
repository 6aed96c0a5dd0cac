"""Reviving a forgotten job: any job, any time, in any state it can be asked from.

Redis forgets a finished job `keep_finished` after PostgreSQL recorded it, but the
job is not gone: its history is kept. A request that applies to the state it ended
in (retry of a failed or cancelled job, delete of any finished one) brings it back
into Redis first, as PostgreSQL recorded it: its task, arguments, result and error,
its seq and attempt (so its history goes on from where it stopped), the retries and
timeout of its latest update, and the extra fields it was enqueued with. Its kind is
its task's kind in today's config (the history does not keep it), and a job whose
task is no longer declared is not revived: the request is refused with its state.
The request's event says `revived`.

Pause, resume, update and cancel never apply to a finished job, so for a forgotten
one they are refused with the state it ended in, as for any finished job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from runner.config.settings import Settings
from runner.errors import StoreUnavailable
from runner.states import TRANSITIONS
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import DEFAULT_QUEUE, PRIORITIES, QUEUE_NAME
from runner.store.redis.store import RedisStore

REVIVING = ("retry", "delete")  # the requests that apply to a finished job
UNCLAIMED_KEEP_MS = 60_000  # a revived job no request took is forgotten again after this
_ELEMENT = {"task", "args", "kwargs", "due_at"}  # the first event's detail, not extra fields


async def revive_for(
    action: str,
    job_ids: Sequence[str],
    *,
    settings: Settings,
    store: RedisStore,
    pg: PgStore | None,
    now_ms: int,
) -> set[str]:
    """Bring back the forgotten jobs among `job_ids` that `action` applies to; the ids
    brought back (none when PostgreSQL is out of reach: the request says why)."""
    if action not in REVIVING or not job_ids or pg is None:
        return set()
    try:
        rows = await pg.revivable(job_ids)
    except StoreUnavailable:
        return set()
    sources = TRANSITIONS[action].sources
    by_queue: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row in rows:
        if row["state"] in sources and row["task"] in settings.tasks:
            queue, fields = _fields(row, settings, now_ms)
            by_queue.setdefault(queue, []).append((row["id"], fields))
    revived: set[str] = set()
    for queue, jobs in by_queue.items():  # each back in its own queue
        revived |= await store.queue(queue).revive(jobs, now_ms, UNCLAIMED_KEEP_MS)
    return revived


def _fields(row: Mapping[str, Any], settings: Settings, now_ms: int) -> tuple[str, dict[str, Any]]:
    """The job's queue, and its hash named in full, from its runner_jobs row (see
    revive_jobs.sql) and its first event (which names its queue and priority)."""
    task = settings.tasks[row["task"]]
    fields: dict[str, Any] = {
        "task": row["task"], "kind": task.kind, "state": row["state"],
        "args": row["args"] or "[]", "kwargs": row["kwargs"] or "{}",
        "due_at": row["due_ms"] if row["due_ms"] is not None else now_ms,
        "attempt": row["attempt"], "seq": row["seq"],
        "max_attempts": int(row["max_attempts"] or task.max_attempts),
    }  # fmt: skip
    for name in ("result", "error", "timeout"):
        if row[name] is not None:
            fields[name] = row[name]
    first = orjson.loads(row["first_detail"] or "{}")
    queue = first.pop("queue", DEFAULT_QUEUE)
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        queue = DEFAULT_QUEUE
    if first.get("priority") in PRIORITIES[1:]:
        fields["priority"] = str(first.pop("priority"))
    fields.update({k: v for k, v in first.items() if k not in _ELEMENT and isinstance(v, str)})
    return queue, fields
