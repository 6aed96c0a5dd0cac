"""A job's concurrency group: which jobs share a task's `concurrency` slots.

`[tasks.X] concurrency = N` lets at most N of the task's jobs run at once across
every daemon (of one queue: the slots live in the queue's slot of Redis);
`concurrency_key = "kwargs.account_id"` (or `"args.0"`) makes that N per value of
the key. The group is worked out once, at enqueue, and stored in the job's hash
with the cap: the claim script needs no JSON decoding, and an update of the job's
arguments keeps the group it was enqueued in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from runner.errors import UsageError


def key_value(
    path: str, args: Sequence[Any], kwargs: Mapping[str, Any], setting: str = "concurrency_key"
) -> str:
    """The key's value in a job's arguments, as text (a string as it is, anything
    else as JSON); UsageError naming the path when the job does not have it."""
    where, _, name = path.partition(".")
    if where == "args":
        index = int(name)
        if index >= len(args):
            raise UsageError(f"{setting} {path}: the job has {len(args)} args")
        value = args[index]
    elif name in kwargs:
        value = kwargs[name]
    else:
        raise UsageError(f"{setting} {path}: the job has no kwargs {name!r}")
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def cap_fields(
    task: str, limit: int | None, path: str | None, job: Mapping[str, Any]
) -> dict[str, str]:
    """The job hash fields of its cap ({} for a task without one). `job`: its args and
    kwargs (as unique_fields and rate_fields take them)."""
    if limit is None:
        return {}
    group = task if path is None else f"{task}={key_value(path, job['args'], job['kwargs'])}"
    return {"cap": str(limit), "cap_group": group}
