"""Dependencies between jobs: a job enqueued with `depends_on=[ids]` waits `blocked`
until every one of them has ended, then becomes due; `on_failure` says what a
dependency that did not succeed (failed, cancelled, deleted) does to it: "cancel"
(the default) or "fail" ends it so at once, "run" lets it run once the others ended.

The scripts keep the graph (lua/lib.lua, enqueue.lua): the job's hash names its
dependencies (`after`, which its first event records in PostgreSQL as well), each
dependency lists its dependents, and the script that ends a dependency releases its
dependents in the same atomic step. Here: the fields a job carries, and the order
a batch goes in, so that a job may depend on another of its own batch (a cycle is
refused, with its ids named).
"""

from __future__ import annotations

import graphlib
from collections.abc import Sequence
from typing import Any

import orjson

from runner.errors import UnknownDependency, UsageError
from runner.jobs import NewJob

ON_FAILURE = ("cancel", "run", "fail")


def dependency_fields(
    depends_on: Sequence[str] | None, on_failure: str | None, pass_results: bool = False
) -> dict[str, str]:
    """The job hash fields of its dependencies ({} for a job without any). With
    `pass_results`, the job receives their results as its first argument (lua/lib.lua
    pass_results): the result itself for one dependency, a list in the order of
    `depends_on` for several."""
    if not depends_on:
        if on_failure is not None or pass_results:
            raise UsageError("on_failure and pass_results need depends_on")
        return {}
    if isinstance(depends_on, str) or not all(isinstance(i, str) and i for i in depends_on):
        raise UsageError(f"depends_on: give a list of job ids, got {depends_on!r}")
    policy = "cancel" if on_failure is None else on_failure
    if policy not in ON_FAILURE:
        raise UsageError(f"on_failure: must be one of {', '.join(ON_FAILURE)}, got {policy!r}")
    ids = list(dict.fromkeys(depends_on))
    fields = {"after": orjson.dumps(ids).decode(), "on_failure": policy}
    return fields | ({"results": "1"} if pass_results else {})


def dependencies_of(job: NewJob) -> list[str]:
    after = job.extra.get("after")
    return [] if after is None else list(orjson.loads(after))


def in_dependency_order(jobs: Sequence[NewJob]) -> list[NewJob]:
    """The jobs, each after those of the batch it depends on (the others keep their
    order); UnknownDependency naming the jobs of a cycle."""
    by_id = {job.id: job for job in jobs}
    graph = {job.id: [d for d in dependencies_of(job) if d in by_id] for job in jobs}
    if not any(graph.values()) or _ordered(jobs, graph):
        return list(jobs)  # a workflow's jobs come so: no sort (O(n))
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle: list[Any] = exc.args[1]
        raise UnknownDependency(
            f"these jobs depend on each other in a cycle: {' -> '.join(map(str, cycle))}; "
            "nothing was enqueued"
        ) from None
    return [by_id[job_id] for job_id in order]


def _ordered(jobs: Sequence[NewJob], graph: dict[str, list[str]]) -> bool:
    """Whether each job comes after those of the batch it depends on."""
    seen: set[str] = set()
    for job in jobs:
        if not seen.issuperset(graph[job.id]):
            return False
        seen.add(job.id)
    return True


def outside(jobs: Sequence[NewJob]) -> set[str]:
    """The ids the jobs depend on that are not in the batch itself."""
    ids = {job.id for job in jobs}
    return {d for job in jobs for d in dependencies_of(job) if d not in ids}


def check_same_queue(jobs: Sequence[NewJob], live: dict[str, str]) -> None:
    """A job depends only on jobs of its own queue (one queue's scripts keep the graph,
    in one slot of a Redis Cluster); UsageError naming both otherwise. `live`: the
    queue of each dependency that Redis holds."""
    for job in jobs:
        for dep in dependencies_of(job):
            if dep in live and live[dep] != job.queue:
                raise UsageError(
                    f"job {job.id} (queue {job.queue!r}) depends on job {dep}, which is in "
                    f"queue {live[dep]!r}: a job can depend only on jobs of its own queue"
                )
