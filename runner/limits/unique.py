"""Unique jobs: `[tasks.X] unique = ...` keeps a second job with the same unique key
out while the first one holds it; the enqueue of such a duplicate returns the
first job, as a reused id does (created False, with its state).

How long a job holds its key, by `unique`:
- "queued": until it first starts (while scheduled or paused);
- "running": until its first attempt ends (scheduled, paused or running);
- "until_done": until it ends for good (retries included);
- a duration ("10m"): for that long after its enqueue, whatever happens to it.

The key is the task and the value of `unique_key` (a path as concurrency_key's),
or, without one, the task and all of the job's arguments. enqueue.lua checks and
takes it in the same atomic step that creates the job, so 20 clients enqueuing the
same key at once make exactly one job. A job holds its key in Redis: a unique job
due beyond the park horizon is kept in Redis rather than parked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from runner.limits.caps import key_value
from runner.states import State, states_argv

# The states in which a job holds its key, by mode (a duration holds it by time alone).
HOLDING: dict[str, frozenset[State]] = {
    "queued": frozenset({State.SCHEDULED, State.PAUSED}),
    "running": frozenset({State.SCHEDULED, State.PAUSED, State.RUNNING}),
    "until_done": frozenset({State.SCHEDULED, State.PAUSED, State.RUNNING, State.RETRYING}),
}
HOLDING_ARGV = orjson.dumps(
    {mode: states_argv(states) for mode, states in HOLDING.items()}
).decode()


def unique_fields(
    task: str, mode: str | None, path: str | None, job: Mapping[str, Any]
) -> dict[str, str]:
    """The job hash fields of its uniqueness ({} for a task without it). `job`: its
    args and kwargs, and their JSON texts as args_json and kwargs_json."""
    if mode is None:
        return {}
    if path is not None:
        value = key_value(path, job["args"], job["kwargs"], setting="unique_key")
    else:
        text = f"{job['args_json']}\n{job['kwargs_json']}"
        value = hashlib.sha256(text.encode()).hexdigest()[:32]
    return {"unique": mode, "unique_key": f"{task}={value}"}
