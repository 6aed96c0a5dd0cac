"""Enqueueing, the client's verbs for new work: a request checked into a NewJob
(its limits, uniqueness, bound, fairness and dependencies worked out once, here),
then enqueued in Redis, or parked in PostgreSQL when due beyond the park horizon.

A mixin of Client (client.py), as RequestVerbs (requests.py) is: it uses the
client's settings, store, parking, clock and origin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from runner.client.depends import (
    check_same_queue,
    dependency_fields,
    in_dependency_order,
    outside,
)
from runner.client.input import (
    check_job_id,
    check_size,
    checked,
    due_at_us,
    encode_payload,
    ms_rounded_up,
    new_job_id,
)
from runner.client.room import submit_waiting
from runner.clock import Clock
from runner.config.settings import Settings
from runner.errors import StoreUnavailable, UnknownTask
from runner.jobs import EnqueueResult, NewJob, check_priority, check_queue_name
from runner.limits.bounds import bound_fields, raise_if_refused
from runner.limits.caps import cap_fields
from runner.limits.fair import fair_fields
from runner.limits.rates import rate_fields
from runner.limits.unique import unique_fields
from runner.store import Parking, PgStore, RedisStore
from runner.workflows.build import Workflow, new_workflow_id, workflow_jobs
from runner.workflows.canvas import Shape
from runner.workflows.join import builtin_task

ENQUEUE_BATCH = 1000  # jobs per enqueue script call, and so per stream entry


class EnqueueVerbs:
    settings: Settings
    store: RedisStore
    origin: str
    clock: Clock
    parking: Parking
    _retired_filled: bool  # once True, Redis alone knows which ids are taken

    async def _history_store(self) -> PgStore | None:
        raise NotImplementedError  # Client's: Postgres, connected on first use

    def new_job(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        depends_on: Sequence[str] | None = None,
        on_failure: str | None = None,
        pass_results: bool = False,
    ) -> NewJob:
        """Validate a request into a NewJob (raises UsageError subclasses on bad input).
        `depends_on`: ids of jobs that must end first (see runner/client/depends.py)."""
        spec = self.settings.tasks.get(task) or builtin_task(task)
        if spec is None:
            raise UnknownTask(task, list(self.settings.tasks))
        args_json = encode_payload(self.settings, "args", args, list)
        kwargs_json = encode_payload(
            self.settings, "kwargs", {} if kwargs is None else kwargs, dict
        )
        check_size(self.settings, f"args and kwargs of this {task!r} job", args_json, kwargs_json)
        arguments = {"args": args, "kwargs": kwargs or {}, "args_json": args_json,
                     "kwargs_json": kwargs_json}  # fmt: skip
        extra = cap_fields(task, spec.concurrency, spec.concurrency_key, arguments)
        extra |= unique_fields(task, spec.unique, spec.unique_key, arguments)
        extra |= rate_fields(task, spec.rate_interval_us, spec.rate_burst, spec.rate_key, arguments)
        extra |= fair_fields(task, spec.fair_key, arguments)
        extra |= dependency_fields(depends_on, on_failure, pass_results)
        queue = spec.queue if queue is None else checked("queue", queue, check_queue_name)
        extra |= bound_fields(spec.max_queued, self.settings.queue_limits.get(queue))
        due_us = due_at_us(self.clock, delay, at)
        return NewJob(
            id=check_job_id(job_id) if job_id is not None else new_job_id(),
            task=task,
            kind=spec.kind,
            args_json=args_json,
            kwargs_json=kwargs_json,
            due_at_ms=ms_rounded_up(due_us),
            due_at_us=due_us,
            max_attempts=spec.max_attempts,
            chosen_id=job_id is not None,
            queue=queue,
            priority=spec.priority
            if priority is None
            else checked("priority", priority, check_priority),
            extra=extra,
        )

    async def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        wait: float | None = None,
        depends_on: Sequence[str] | None = None,
        on_failure: str | None = None,
        pass_results: bool = False,
    ) -> str:
        """Enqueue one job and return its id. A `job_id` names one job for as long as
        its history is kept: if a job with that id exists, live or recorded, nothing
        changes (enqueue_result() says whether it was created). QueueFull when its
        task's max_queued jobs wait, after waiting up to `wait` s for room. With
        `depends_on`, it waits `blocked` until those jobs ended (runner/client/depends.py);
        UnknownDependency for an id no job has."""
        result = await self.enqueue_result(
            task, args, kwargs, delay=delay, at=at, job_id=job_id, queue=queue,
            priority=priority, wait=wait, depends_on=depends_on, on_failure=on_failure,
            pass_results=pass_results,
        )  # fmt: skip
        return result.id

    async def enqueue_result(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        job_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        wait: float | None = None,
        depends_on: Sequence[str] | None = None,
        on_failure: str | None = None,
        pass_results: bool = False,
    ) -> EnqueueResult:
        """Like enqueue(), with whether the job was created, and if not, the state of
        the job that already holds the id."""
        job = self.new_job(
            task, args, kwargs, delay=delay, at=at, job_id=job_id, queue=queue,
            priority=priority, depends_on=depends_on, on_failure=on_failure,
            pass_results=pass_results,
        )  # fmt: skip
        return raise_if_refused((await submit_waiting(self._submit, [job], wait))[0])

    async def enqueue_many(self, jobs: Sequence[NewJob], wait: float | None = None) -> list[str]:
        """Enqueue many jobs made with new_job(): one round trip for each ENQUEUE_BATCH
        of them, each batch atomic. QueueFull if any was refused at its task's
        max_queued (the others are in: enqueue_many_results says which)."""
        return [raise_if_refused(r).id for r in await self.enqueue_many_results(jobs, wait)]

    async def enqueue_many_results(
        self, jobs: Sequence[NewJob], wait: float | None = None
    ) -> list[EnqueueResult]:
        """Like enqueue_many(), with whether each job was created (see enqueue_result),
        and, for one refused at its task's max_queued after waiting up to `wait` s for
        room, why (`refused`). A million jobs are a thousand script calls, not one: one
        call holds Redis for its whole length and writes one stream entry."""
        ordered = in_dependency_order(jobs)
        results: dict[int, EnqueueResult] = {}
        for start in range(0, len(ordered), ENQUEUE_BATCH):
            part = ordered[start : start + ENQUEUE_BATCH]
            got = await submit_waiting(self._submit, part, wait)
            results.update((id(job), result) for job, result in zip(part, got, strict=True))
        return [results[id(job)] for job in jobs]

    async def enqueue_workflow(
        self, shape: Shape, workflow_id: str | None = None, wait: float | None = None
    ) -> Workflow:
        """Enqueue a chain, group or chord (runner.workflows.canvas) as one workflow, in
        one call: each step a job that depends on the part before it, every job marked
        with the workflow's id. QueueFull or UnknownDependency as enqueue_many."""
        chosen = new_workflow_id() if workflow_id is None else workflow_id
        jobs = workflow_jobs(shape, chosen, self.new_job)
        return Workflow(chosen, await self.enqueue_many(jobs, wait))

    async def _submit(self, jobs: Sequence[NewJob]) -> list[EnqueueResult]:
        """Enqueue the jobs whose id is free: in Redis, or parked in Postgres when due
        beyond the park horizon (see parking.py). Redis forgets a finished job (after
        `keep_finished`, once Postgres recorded it), but keeps its id if the caller
        chose it (runner/daemon/retired_ids.py), so enqueue.lua alone refuses a chosen id
        whose history is kept. Until a daemon filled that record from the history,
        a chosen id is also looked up in Postgres."""
        chosen = [job.id for job in jobs if job.chosen_id]
        recorded = await self._recorded(chosen) if chosen and not await self._ids_in_redis() else {}
        fresh = [job for job in jobs if job.id not in recorded]
        now = self.clock.now_ms()
        parked = await self.parking.park_new(fresh, now)
        near = [job for job in fresh if job.id not in parked]
        forgotten, results = await self._forgotten_dependencies(near)
        created = iter(await self.store.enqueue_many(near, self.origin, now, forgotten, results))
        if not recorded and not parked:
            return list(created)
        live = await self.store.job_states(list(recorded)) if recorded else {}
        return [
            EnqueueResult(job.id, False, live.get(job.id) or recorded[job.id])
            if job.id in recorded
            else parked[job.id]
            if job.id in parked
            else next(created)
            for job in jobs
        ]

    async def _forgotten_dependencies(
        self, jobs: Sequence[NewJob]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The recorded state of each dependency of these jobs that Redis no longer
        holds (it ended and was forgotten), which the enqueue script judges it by; and,
        for a job that takes its dependencies' results, their recorded results."""
        ids = outside(jobs)
        if not ids:
            return {}, {}
        live = await self.store.locate(sorted(ids))
        check_same_queue(jobs, live)
        missing = ids - set(live)
        if not missing:
            return {}, {}
        states = await self._recorded(sorted(missing))
        if not any("results" in job.extra for job in jobs):
            return states, {}
        pg = await self._history_store()
        rows = [await pg.get_job(job_id) for job_id in sorted(states)] if pg else []
        return states, {r["id"]: orjson.dumps(r["result"]).decode() for r in rows if r}

    async def _ids_in_redis(self) -> bool:
        """Whether the retired ids were filled (checked until they are, then never)."""
        self._retired_filled = self._retired_filled or await self.store.retired_filled()
        return self._retired_filled

    async def _recorded(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The recorded state of each of these ids that Postgres knows. A client built
        without Postgres leaves the judgement to Redis alone."""
        if not job_ids:
            return {}
        try:
            pg = await self._history_store()
            return await pg.recorded_states(job_ids) if pg else {}
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                f"cannot check that job id {job_ids[0]!r} is unused: its history is in "
                f"PostgreSQL, which is unreachable ({exc}); retry once it is back, or "
                "enqueue without an id",
                exc.server,
            ) from exc
