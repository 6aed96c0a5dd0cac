"""A shape (canvas.py) made into the jobs of one workflow: each step a job, depending
on the last jobs of the part before it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import UsageError
from runner.jobs import NewJob
from runner.workflows.canvas import Chain, Group, Shape, Step
from runner.workflows.fan_out import FanOut
from runner.workflows.join import JOIN_TASK

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


@dataclass(frozen=True)
class FanOutJobs:
    """The jobs a running task handed out, and the last of them: the jobs that stand
    for the task to what depends on it."""

    jobs: list[NewJob]
    ends: list[str]


def fan_out_jobs(
    spec: FanOut, parent_id: str, *, queue: str, workflow_id: str, new_job: NewJobMaker,
    name_job: Callable[[], str | None],
) -> FanOutJobs:  # fmt: skip
    """The jobs of a fan-out returned by job `parent_id`: its children start once it
    ended (they depend on it, in its queue unless a step names one), its `then` once
    they all did (taking their results unless told not to)."""
    builder = _Builder(workflow_id, new_job, name_job, {"spawned_by": parent_id}, {"queue": queue})
    ends = builder.add(spec.children, [parent_id], results=False) or [parent_id]
    if spec.then is not None:
        ends = builder.add(spec.then, ends, results=spec.pass_results)
    return FanOutJobs(builder.jobs, [] if ends == [parent_id] else ends)


class _Builder:
    """`name_job` gives each step its id (None: a fresh one), `fields` are added to each
    job's hash, and `defaults` are options a step's own ones override."""

    def __init__(
        self,
        workflow_id: str,
        new_job: NewJobMaker,
        name_job: Callable[[], str | None] = lambda: None,
        fields: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.new_job = new_job
        self.name_job = name_job
        self.fields = dict(fields or {})
        self.defaults = dict(defaults or {})
        self.jobs: list[NewJob] = []
        self.queues: dict[str, str] = {}  # each job's queue, by id

    def add(self, shape: Shape, after: list[str], results: bool) -> list[str]:
        """Add the shape's jobs, its first ones depending on `after` (and taking their
        results if `results`); its last jobs' ids. Between many and many, a join
        (runner/workflows/join.py)."""
        firsts = _firsts(shape)
        many = len(after) * len(firsts) > len(after) + len(firsts) + 1
        if many and all(s.options.get("on_failure", "cancel") != "run" for s in firsts):
            after = [self._join(after, results)]
        if isinstance(shape, Step):
            job = self._job(shape, after, results)
            self._append(job)
            return [job.id]
        if isinstance(shape, Group):
            return [last for part in shape.parts for last in self.add(part, after, results)]
        for n, part in enumerate(shape.parts):
            after = self.add(part, after, results if n == 0 else shape.pass_results)
        return after

    def _join(self, after: list[str], results: bool) -> str:
        queue = next((self.queues[i] for i in after if i in self.queues),
                     self.defaults.get("queue"))  # fmt: skip
        job = self.new_job(
            JOIN_TASK, (), {}, depends_on=after, pass_results=results, job_id=self.name_job(),
            queue=queue,
        )  # fmt: skip
        job.extra["workflow"] = self.workflow_id
        job.extra.update(self.fields)
        self._append(job)
        return job.id

    def _append(self, job: NewJob) -> None:
        self.jobs.append(job)
        self.queues[job.id] = job.queue

    def _job(self, step: Step, after: list[str], results: bool) -> NewJob:
        options: dict[str, Any] = self.defaults | dict(step.options)
        chosen = self.name_job()
        if chosen is not None:
            options.setdefault("job_id", chosen)
        if not after and "on_failure" in options:
            raise UsageError(f"step {step.task!r}: on_failure needs a step before it")
        if after and results:
            options.setdefault("pass_results", True)
        job = self.new_job(
            step.task, step.args, dict(step.kwargs), depends_on=after or None, **options
        )
        job.extra["workflow"] = self.workflow_id
        job.extra.update(self.fields)
        return job


def _firsts(shape: Shape) -> list[Step]:
    """The steps a shape starts with: those that depend on what comes before it."""
    if isinstance(shape, Step):
        return [shape]
    if isinstance(shape, Group):
        return [first for part in shape.parts for first in _firsts(part)]
    return _firsts(shape.parts[0]) if shape.parts else []
