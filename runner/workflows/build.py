"""A shape (canvas.py) made into the jobs of one workflow: each step a job, depending
on the last jobs of the part before it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.jobs import NewJob
from runner.workflows.canvas import Chain, Group, Shape, Step

NewJobMaker = Callable[..., NewJob]  # Client.new_job
MAX_ID = 60


@dataclass(frozen=True)
class Workflow:
    """An enqueued workflow: its id, and its jobs' ids in the order of its steps."""

    id: str
    job_ids: list[str]


def new_workflow_id() -> str:
    return "wf-" + secrets.token_hex(8)


def workflow_jobs(shape: Shape, workflow_id: str, new_job: NewJobMaker) -> list[NewJob]:
    """The jobs of the shape, in the order of its steps."""
    if not isinstance(shape, Step | Chain | Group):
        raise UsageError(f"a workflow is a step, chain, group or chord, got {shape!r}")
    if not workflow_id or len(workflow_id) > MAX_ID or " " in workflow_id:
        raise UsageError(f"workflow id must be 1-{MAX_ID} characters without spaces")
    jobs: list[NewJob] = []
    _build(shape, [], workflow_id, new_job, jobs)
    if not jobs:
        raise UsageError("a workflow needs at least one step")
    return jobs


def _build(
    shape: Shape, after: list[str], workflow_id: str, new_job: NewJobMaker, jobs: list[NewJob]
) -> list[str]:
    """Add the shape's jobs, its first ones depending on `after`; its last jobs' ids."""
    if isinstance(shape, Step):
        job = _job(shape, after, workflow_id, new_job)
        jobs.append(job)
        return [job.id]
    if isinstance(shape, Group):
        return [last for part in shape.parts for last in _build(part, after, workflow_id,
                                                                new_job, jobs)]  # fmt: skip
    for part in shape.parts:
        after = _build(part, after, workflow_id, new_job, jobs)
    return after


def _job(step: Step, after: list[str], workflow_id: str, new_job: NewJobMaker) -> NewJob:
    options: dict[str, Any] = dict(step.options)
    if not after and "on_failure" in options:
        raise UsageError(f"step {step.task!r}: on_failure needs a step before it")
    job = new_job(step.task, step.args, dict(step.kwargs), depends_on=after or None, **options)
    job.extra["workflow"] = workflow_id
    return job
