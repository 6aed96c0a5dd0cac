"""The Python client: enqueue jobs and read their state, from any process.

    async with await Client.connect() as client:
        job_id = await client.enqueue("send_email", ["a@example.com"], delay=10)
        job = await client.wait(job_id, timeout=60)

Only tasks declared in the config can be enqueued; arguments must be JSON.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from runner.client.awaiting import EndWatch
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
    due_at_ms,
    encode_payload,
    new_job_id,
)
from runner.client.job_info import JobInfo, public_event
from runner.client.listing import ListQuery, Page, list_jobs_live
from runner.client.paging import DEFAULT_LIMIT
from runner.client.requests import RequestVerbs
from runner.client.room import submit_waiting
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config.settings import Settings, config_path, load_settings
from runner.errors import (
    JobFailed,
    JobNotFound,
    ResultTimeout,
    StoreUnavailable,
    UnknownTask,
    UsageError,
)
from runner.jobs import EnqueueResult, NewJob, check_priority, check_queue_name
from runner.limits.bounds import bound_fields, raise_if_refused
from runner.limits.caps import cap_fields
from runner.limits.fair import fair_fields
from runner.limits.rates import rate_fields
from runner.limits.unique import unique_fields
from runner.servers.connect import resolve_urls
from runner.states import State
from runner.store import Keys, Parking, PgStore, RedisStore, redis_client
from runner.store import RedisClient as Redis
from runner.workflows.build import Workflow, new_workflow_id, workflow_jobs
from runner.workflows.canvas import Shape

ENQUEUE_BATCH = 1000  # jobs per enqueue script call, and so per stream entry


class Client(RequestVerbs):
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        pg: PgStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        database_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.pg = pg
        self.clock = clock
        self._database_url = database_url
        self.store = RedisStore(
            redis,
            Keys(settings.key_prefix),
            int(settings.keep_finished * 1000),
            settings.wait_replicas,
        )
        self.origin = f"client:{socket.gethostname()}:{os.getpid()}"
        self.parking = Parking(
            self.store, self._history_store, settings.park_horizon, clock, self.origin
        )
        self._retired_filled = False  # once True, Redis alone knows which ids are taken
        self._ends = EndWatch(self.store)  # wakes result() and wait() callers

    @classmethod
    async def connect(
        cls, settings: Settings | None = None, config: str | Path | None = None
    ) -> Client:
        """A client for the config's servers (or the embedded ones a daemon started)."""
        if settings is None:
            settings = load_settings(config_path(config, os.environ))
        redis_url, database_url, _ = resolve_urls(settings, start_embedded=False)
        redis = redis_client(redis_url, settings.redis_cluster)
        return cls(settings, redis, database_url=database_url)

    async def _history_store(self) -> PgStore | None:
        """Postgres, connected on first use: enqueueing works while Postgres is down."""
        if self.pg is None and self._database_url is not None:
            self.pg = await PgStore.connect(self._database_url, max_size=2)
        return self.pg

    async def history_store(self) -> PgStore | None:
        """The Postgres store behind this client (connected on first use), if any."""
        return await self._history_store()

    async def close(self) -> None:
        await self._ends.close()
        if self.pg is not None:
            await self.pg.close()
        await self.redis.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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
        spec = self.settings.tasks.get(task)
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
        return NewJob(
            id=check_job_id(job_id) if job_id is not None else new_job_id(),
            task=task,
            kind=spec.kind,
            args_json=args_json,
            kwargs_json=kwargs_json,
            due_at_ms=due_at_ms(self.clock, delay, at),
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

    async def get(self, job_id: str) -> JobInfo:
        """The job's state: live from Redis, else as last recorded in Postgres."""
        record = await self.store.get_job(job_id)
        if record is not None:
            return JobInfo(
                record.id,
                record.task,
                record.state,
                record.attempt,
                record.due_at_ms,
                record.args,
                record.kwargs,
                record.result,
                record.error,
                record.extra,
                record.seq,
                queue=record.queue,
                priority=record.priority,
            )
        pg = await self._history_store()
        row = await pg.get_job(job_id) if pg else None
        if row is None:
            raise JobNotFound(job_id)
        return JobInfo(
            row["id"],
            row["task"],
            row["state"],
            row["attempt"],
            row["due_at_ms"],
            row["args"],
            row["kwargs"],
            row["result"],
            row["error"],
            parked=row["parked"],
            queue=row["queue"],
            priority=row["priority"],
        )

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        """Every recorded transition of the job, oldest first, in the shape of `runner
        show --json`'s history (times in RFC 3339 UTC). Postgres is written in batches
        a moment after each transition: `wait(job_id, recorded=True)` first to read
        the whole story of a finished job. JobNotFound for an id no job has."""
        pg = await self._history_store()
        if pg is None:
            raise UsageError("this client has no Postgres connection for history")
        rows = await pg.job_history(job_id)
        if not rows and not await self.store.job_exists(job_id):
            raise JobNotFound(job_id)
        return [public_event(row) for row in rows]

    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        poll: float = 0.05,
        *,
        recorded: bool = False,
    ) -> JobInfo:
        """The job once it has ended, woken by its transitions (awaiting.py); with
        `recorded`, also once Postgres holds its final transition, so history() tells
        the whole story (that part is asked every `poll` s: Postgres sends no word).
        ResultTimeout, a TimeoutError, after `timeout` s; JobNotFound for an unknown id."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = await self._ends.wait_until_ended(self.get, job_id, timeout)
        while recorded and not await self._recorded_up_to(job):
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(job_id, f"{job.state}, not yet recorded,", timeout or 0.0)
            await asyncio.sleep(poll)
        return job

    async def result(self, job_id: str, timeout: float | None = None) -> Any:
        """The result of the job once it has succeeded. JobFailed (with the state and
        error) if it failed, was cancelled or deleted; ResultTimeout if it has not
        ended within `timeout` s; JobNotFound for an unknown id."""
        job = await self._ends.wait_until_ended(self.get, job_id, timeout)
        if job.state != State.SUCCEEDED:
            raise JobFailed(job_id, job.state, job.error)
        return job.result

    async def _recorded_up_to(self, job: JobInfo) -> bool:
        pg = await self._history_store()
        if pg is None:
            raise UsageError("this client has no Postgres connection to wait for history")
        row = await pg.get_job(job.id)
        return row is not None and row["seq"] >= job.seq

    async def list(
        self,
        *,
        state: str | None = None,
        task: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
        queue: str | None = None,
    ) -> Page:
        """One page of jobs, newest first by creation time, answered by Postgres
        through its indexes at any depth, each live job's state as Redis has it
        (a job whose live state left `state` is left out). `since` (inclusive) and
        `until` (exclusive) are aware datetimes or timedeltas ago; `after` is the
        previous page's `next_cursor` (None on the last page). UsageError for a
        malformed argument or cursor, before any server is asked."""
        query = ListQuery.build(
            now_ms=self.clock.now_ms(), state=state, task=task, since=since, until=until,
            limit=limit, after=after, queue=queue,
        )  # fmt: skip
        pg = await self._history_store()
        if pg is None:
            raise UsageError("this client has no Postgres connection to list jobs from")
        return await list_jobs_live(pg, self.store, query)
