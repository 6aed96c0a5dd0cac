"""A run's fan-out (runner/workflows/fan_out.py) enqueued by the daemon that ran it,
before the run's outcome is sent: the outcome then names the jobs that stand for it
(Outcome.hand_over), and the finish script hands its dependents over to them.

The job stays this daemon's (in `active`, its lease renewed) until then, so a daemon
that dies meanwhile leaves it to be reaped and run again, and the new run hands out
the same ids (<job id>.1, .2, ...), which the enqueue keeps as they were. Redis out of
reach is waited out, as the finisher does; a fan-out that cannot be enqueued (an
unknown task, a bad shape) fails the job with the reason, and one whose queue stays
full for a minute fails this attempt (QueueFull), to be retried as any failure.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import orjson

from runner.client.client import Client
from runner.client.input import MAX_JOB_ID, RESERVED_ID_PREFIX
from runner.daemon.resilience import Backoff
from runner.errors import RunnerError, StoreUnavailable, UsageError
from runner.jobs import ClaimedJob
from runner.workflows.build import MAX_ID, fan_out_jobs
from runner.workflows.fan_out import read_fan_out

ROOM_WAIT_S = 60.0  # how long a fan-out waits for room in a bounded queue


class HandOutFailed(RunnerError):
    """The fan-out is malformed or names what cannot be enqueued (an unknown task, a
    bad argument): trying again cannot mend it, so its job fails at once. A queue
    still full after a minute is QueueFull, which the job's retries may outlast."""


def child_ids(parent_id: str) -> Callable[[], str]:
    """<parent>.1, <parent>.2, ...: the same for every run of the parent, so a second
    run hands out no second copy. A cron tick's id (reserved) or a very long one is
    replaced by a digest of it."""
    base = parent_id
    if base.startswith(RESERVED_ID_PREFIX) or len(base) > MAX_JOB_ID - 12:
        base = "fan-" + hashlib.sha256(parent_id.encode()).hexdigest()[:32]
    counter = itertools.count(1)
    return lambda: f"{base}.{next(counter)}"


def workflow_for(parent_id: str, workflow: Any) -> str:
    """The parent's workflow, or one named by the parent's id (a digest if too long)."""
    if isinstance(workflow, str) and workflow:
        return workflow
    if len(parent_id) <= MAX_ID and " " not in parent_id:
        return parent_id
    return "wf-" + hashlib.sha256(parent_id.encode()).hexdigest()[:24]


class HandOut:
    """Enqueues fan-outs with the client of the moment (rebuilt by a reload)."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self.client = client

    async def __call__(self, job: ClaimedJob, result: dict[str, Any]) -> tuple[str, str]:
        """The run's summary (its result, as JSON) and the jobs that stand for it (a
        JSON list, "" when none does); HandOutFailed with the reason."""
        client = self.client()
        try:
            spec = read_fan_out(result)
        except ValueError as exc:
            raise HandOutFailed(f"job {job.id!r} returned a malformed fan-out: {exc}") from None
        workflow = workflow_for(job.id, await self._workflow(client, job.id))
        try:
            made = fan_out_jobs(
                spec, job.id, queue=job.queue, workflow_id=workflow, new_job=client.new_job,
                name_job=child_ids(job.id),
            )  # fmt: skip
        except (UsageError, ValueError, TypeError) as exc:
            raise HandOutFailed(f"job {job.id!r}: its fan-out is refused: {exc}") from None
        await self._enqueue(client, job, made.jobs)
        summary = {"workflow": workflow, "handed_out": len(made.jobs), "then": made.ends}
        ends = orjson.dumps(made.ends).decode() if made.ends else ""
        return orjson.dumps({"fan_out": summary}).decode(), ends

    async def _workflow(self, client: Client, job_id: str) -> Any:
        backoff = Backoff()
        while True:
            try:
                found = await client.store.job_fields([job_id], ["workflow"])
                return found.get(job_id, {}).get("workflow")
            except StoreUnavailable as exc:
                await backoff.pause("hand-out", exc, job_id=job_id)

    async def _enqueue(self, client: Client, job: ClaimedJob, jobs: list[Any]) -> None:
        backoff = Backoff()
        while True:
            try:
                await client.enqueue_many(jobs, wait=ROOM_WAIT_S)
                return
            except StoreUnavailable as exc:
                await backoff.pause("hand-out", exc, job_id=job.id, jobs=len(jobs))
            except UsageError as exc:  # UnknownDependency, a queue of another slot
                raise HandOutFailed(f"job {job.id!r}: its fan-out is refused: {exc}") from None
