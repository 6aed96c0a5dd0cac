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
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.client.awaiting import EndWatch
from runner.client.enqueue import EnqueueVerbs
from runner.client.job_info import JobInfo, public_event
from runner.client.listing import ListQuery, Page, list_jobs_live
from runner.client.paging import DEFAULT_LIMIT
from runner.client.requests import RequestVerbs
from runner.client.workflow_verbs import WorkflowVerbs
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config.settings import Settings, config_path, load_settings
from runner.errors import (
    JobFailed,
    JobNotFound,
    ResultTimeout,
    UsageError,
)
from runner.servers.connect import resolve_urls
from runner.states import State
from runner.store import Keys, Parking, PgStore, RedisStore, redis_client
from runner.store import RedisClient as Redis


class Client(EnqueueVerbs, RequestVerbs, WorkflowVerbs):
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
