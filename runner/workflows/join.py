"""The join between two parts of a workflow: a built-in task every daemon runs.

A chain from a group of M jobs to a part that starts with N jobs would make each of
the N depend on each of the M: M x N dependencies, a million between two groups of a
thousand. The builder puts one join job between them instead (M + N): it waits for
the M, and the N wait for it. It runs as any async job, in no time, and returns the
results it was given (with pass_results: the M's, in their order), so the N receive
what they would have received from the M directly. It is inserted only where every
one of the N cancels or fails on a failed dependency (the default): a join ends
cancelled once one of the M did not succeed, which those policies treat alike; a
step that runs anyway waits for each of the M itself.
"""

from __future__ import annotations

from typing import Any

from runner.config.settings import TaskSettings

JOIN_TASK = ":join"  # a name no config declares (":" names are runner's own)
JOIN_SETTINGS = TaskSettings(
    name=JOIN_TASK,
    target="runner.workflows.join:join",
    kind="async",
    retries=5,  # a join's daemon may die: it runs again, being a no-op
)


async def join(*results: Any) -> Any:
    """The results it was given (the first argument), or None."""
    return results[0] if results else None


def builtin_task(name: str) -> TaskSettings | None:
    """The settings of a built-in task, or None for any other name."""
    return JOIN_SETTINGS if name == JOIN_TASK else None
