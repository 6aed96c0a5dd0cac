"""What `runner status` reads from PostgreSQL: jobs per task and state, one query."""

from __future__ import annotations

from typing import Any

from runner.store.failures import on_postgres
from runner.store.postgres.queries import query


@on_postgres
async def task_state_counts(pool: Any) -> dict[str, dict[str, int]]:
    """Task -> state -> jobs, each job counted in its latest recorded state (`pool`
    is asyncpg's)."""
    counts: dict[str, dict[str, int]] = {}
    for row in await pool.fetch(query("state_task_counts")):
        counts.setdefault(row["task"], {})[row["state"]] = row["jobs"]
    return counts


def per_state(tasks: dict[str, dict[str, int]]) -> dict[str, int]:
    """The per-state totals of `task_state_counts`, in state order."""
    totals: dict[str, int] = {}
    for states in tasks.values():
        for state, jobs in states.items():
            totals[state] = totals.get(state, 0) + jobs
    return dict(sorted(totals.items()))
