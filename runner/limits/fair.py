"""Fairness between keys: `[tasks.X] fair_key = "kwargs.tenant"` (a path as
concurrency_key's) shares the task's starts between the values of that argument in
turn, so a tenant with 50,000 jobs queued does not hold back another's 50.

Each value is a group; its due jobs wait together, in due order, and the group waits
for its turn. A claim serves the groups whose turn has come, the one that waited
longest first, each an equal share of the starts it makes, one job of each group
after another (lua/lib.lua, claim.lua). The group is worked out once, at enqueue,
and kept in the job's hash. Within a group, jobs start in due order: a priority
orders a fair task's jobs only against other tasks' jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.limits.caps import key_value


def fair_fields(task: str, path: str | None, job: Mapping[str, Any]) -> dict[str, str]:
    """The job hash fields of its fairness group ({} for a task without a fair key)."""
    if path is None:
        return {}
    value = key_value(path, job["args"], job["kwargs"], setting="fair_key")
    return {"fair_group": f"{task}={value}"}
