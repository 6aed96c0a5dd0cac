"""Bounded queues: `[tasks.X] max_queued = N` refuses an enqueue while N of the task's
jobs wait for their first start in the queue the job goes to; `[queues.Q]
max_queued = N` while N jobs of any task wait in queue Q.

A job counts from its enqueue until its first claim, or until a cancel or delete
ends it: while scheduled, paused, due later, or held back by a cap or a rate. A
retry does not count again: the bound is on new work coming in, and a job already
accepted is never refused its retry. The check and the count are one atomic step
of enqueue.lua, so any number of clients at once never pass the bound; a batch is
refused job by job (each job gets its own result), never half-written. A counted
job stays in Redis (it is not parked), where its count is. Jobs of a cron schedule
are neither refused nor counted: a tick is not lost to a full queue.
"""

from __future__ import annotations

from runner.errors import QueueFull, UnknownDependency
from runner.jobs import EnqueueResult

REFUSED = "refused"  # the state an EnqueueResult names for a job refused at the bound
# ...and for a job that depends on an id no job has (runner/client/depends.py)
UNKNOWN_DEPENDENCY = "unknown_dependency"
UNKNOWN_REPLY = "!unknown "  # enqueue.lua's reply: "!unknown <id>"
FULL_REPLY = "!full "  # enqueue.lua's reply: "!full <waiting> <bound> task|queue"


def bound_fields(task_limit: int | None, queue_limit: int | None) -> dict[str, str]:
    """The job hash fields of its task's and its queue's bounds ({} without either)."""
    fields = {} if task_limit is None else {"bound": str(task_limit)}
    return fields if queue_limit is None else fields | {"queue_bound": str(queue_limit)}


def refusal(task: str, queue: str, job_id: str, reply: str) -> EnqueueResult:
    """The result of a job refused at a bound, from enqueue.lua's reply."""
    waiting, bound, what = reply[len(FULL_REPLY) :].split(" ", 2)
    where = f"queue {queue!r}" if what == "queue" else f"task {task!r}"
    key = f"[queues.{queue}]" if what == "queue" else f"[tasks.{task}]"
    why = (
        f"{where} is full: {waiting} of its jobs wait to start and its max_queued ({key}) "
        f"is {bound}; job {job_id} was not enqueued. Retry later, or enqueue with a wait "
        "(--wait SECONDS, wait=SECONDS) to wait for room."
    )
    return EnqueueResult(job_id, False, REFUSED, why)


def unknown_dependency(job_id: str, dependency: str) -> EnqueueResult:
    why = (
        f"job {job_id} depends on {dependency!r}, which no job has (neither Redis nor the "
        "history knows it); nothing was enqueued. Enqueue that job first, or leave it out."
    )
    return EnqueueResult(job_id, False, UNKNOWN_DEPENDENCY, why)


def raise_if_refused(result: EnqueueResult) -> EnqueueResult:
    if result.refused is not None and result.state == UNKNOWN_DEPENDENCY:
        raise UnknownDependency(result.refused)
    if result.refused is not None:
        raise QueueFull(result.id, result.refused)
    return result
