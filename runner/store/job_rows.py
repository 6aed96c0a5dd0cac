"""A new job as enqueue.lua takes it: one JSON array per job, built once here for
Redis and for PostgreSQL (a parked job keeps the same array until it is put back)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from runner.jobs import NewJob

# The fields of a job hash that enqueue.lua writes from the element itself (the id
# names the key); any other field of a hash is one of the job's extra fields.
ELEMENT_FIELDS = ("task", "kind", "args", "kwargs", "due_at", "max_attempts")


def job_element(job: NewJob) -> list[Any]:
    """[id, task, kind, args, kwargs, due_at, max_attempts, extra]: what is needed to
    write the job's hash (args and kwargs stay JSON texts, stored as they are)."""
    return [job.id, job.task, job.kind, job.args_json, job.kwargs_json, due_score(job),
            job.max_attempts, job.extra]  # fmt: skip


def due_score(job: NewJob) -> int | float:
    """The job's score in its due set: its due time in ms, with the microseconds asked
    for (doubles of ms are under a microsecond apart until the year 2248), never below
    them: the nearest double may be, and the next one up is not."""
    if job.due_at_us is None or job.due_at_us % 1000 == 0:
        return job.due_at_ms
    score = job.due_at_us / 1000
    return score if score * 1000 >= job.due_at_us else math.nextafter(score, math.inf)


def enqueue_detail(job: NewJob) -> str:
    """The detail of a job's first event (JSON text): what Postgres folds into its
    runner_jobs row (task, args, kwargs, due time, extra fields)."""
    extra = orjson.dumps(job.extra).decode()[1:-1] if job.extra else ""
    if job.queue != "default":
        extra += f'{"," if extra else ""}"queue":{orjson.dumps(job.queue).decode()}'
    if job.priority:
        extra += f'{"," if extra else ""}"priority":{job.priority}'
    return (
        f'{{"task":{orjson.dumps(job.task).decode()},"args":{job.args_json},'
        f'"kwargs":{job.kwargs_json},"due_at":{job.due_at_ms}{"," if extra else ""}{extra}}}'
    )


def enqueue_row(job: NewJob) -> list[Any]:
    """The element with the first event's detail, the cron guard (or false), not
    promoted, whether the caller chose the id, and its priority (see enqueue.lua)."""
    guard = False if job.guard is None else job.guard
    return [*job_element(job), enqueue_detail(job), guard, False, 1 if job.chosen_id else 0,
            job.priority]  # fmt: skip
