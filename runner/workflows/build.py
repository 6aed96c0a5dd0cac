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
    builder = _Builder(workflow_id, new_job)
    builder.add(shape, [], results=False)
    if not builder.jobs:
        raise UsageError("a workflow needs at least one step")
    return builder.jobs


class _Builder:
    def __init__(self, workflow_id: str, new_job: NewJobMaker) -> None:
        self.workflow_id = workflow_id
        self.new_job = new_job
        self.jobs: list[NewJob] = []

    def add(self, shape: Shape, after: list[str], results: bool) -> list[str]:
        """Add the shape's jobs, its first ones depending on `after` (and taking their
        results if `results`); its last jobs' ids."""
        if isinstance(shape, Step):
            job = self._job(shape, after, results)
            self.jobs.append(job)
            return [job.id]
        if isinstance(shape, Group):
            return [last for part in shape.parts for last in self.add(part, after, results)]
        for n, part in enumerate(shape.parts):
            after = self.add(part, after, results if n == 0 else shape.pass_results)
        return after

    def _job(self, step: Step, after: list[str], results: bool) -> NewJob:
        options: dict[str, Any] = dict(step.options)
        if not after and "on_failure" in options:
            raise UsageError(f"step {step.task!r}: on_failure needs a step before it")
        if after and results:
            options.setdefault("pass_results", True)
        job = self.new_job(
            step.task, step.args, dict(step.kwargs), depends_on=after or None, **options
        )
        job.extra["workflow"] = self.workflow_id
        return job
