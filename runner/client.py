"""The Python client: enqueue jobs and read their state, from any process.

    async with await Client.connect() as client:
        job_id = await client.enqueue("send_email", ["a@example.com"], delay=10)
        job = await client.wait(job_id, timeout=60)

Only tasks declared in the config can be enqueued; arguments must be JSON.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import socket
import time
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings, config_path, load_settings
from runner.connections import redis_client, resolve_urls
from runner.errors import JobNotFound, PayloadError, UnknownTask, UsageError
from runner.jobs import EARLIEST_MS, LATEST_MS, NewJob, ms_ceil, rfc3339
from runner.states import TERMINAL
from runner.store.keys import Keys
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore

MAX_JOB_ID = 200
# Control characters (Postgres text cannot hold NUL; escapes garble a terminal) and
# lone surrogates (not UTF-8, so no server could store them) have no place in an id.
_UNFIT = ("Cc", "Cs")


@dataclass(frozen=True)
class JobInfo:
    id: str
    task: str
    state: str
    attempt: int
    due_at_ms: int | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


# A JSON escape of the NUL character (an odd number of backslashes before u0000):
# PostgreSQL's jsonb cannot hold it, so the job's history could not be recorded.
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
RESERVED_ID_PREFIX = "cron:"  # cron ticks' ids: a user's id must not pre-empt a tick


def _encode(name: str, value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError as exc:
        raise PayloadError(f"{name} must be JSON-serialisable: {exc}") from None
    refuse_nul(name, text)
    return text


def refuse_nul(name: str, json_text: str) -> None:
    """PayloadError naming `name` if the JSON text holds a NUL character."""
    if "u0000" in json_text and _NUL.search(json_text):
        raise PayloadError(
            f"{name} holds a NUL character (\\u0000), which PostgreSQL cannot store in "
            "the job's history; remove it or encode the data (e.g. base64)"
        )


def due_at_ms(
    clock: Clock,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    *,
    names: tuple[str, str] = ("delay", "at"),
) -> int:
    """When a job asked for now, `delay` seconds from now or `at` a time becomes due, in
    whole ms, rounded up: a job never starts before the time asked for. UsageError naming
    the argument (`names`: how the caller spells delay and at) for a time no datetime
    can show (after 9999-12-31T23:59:59.999Z) or a delay that is not a finite number."""
    delay_name, at_name = names
    if delay is not None and at is not None:
        raise UsageError(f"give either {delay_name} or {at_name}, not both")
    if at is not None:
        return _due_at(at, at_name)
    seconds = _delay_seconds(delay, delay_name)
    if seconds == 0:
        return clock.now_ms()  # due now: nothing can start before it was asked for
    # now() is a float: the clock's nanoseconds rounded twice (to a double, then
    # divided), up to about one ulp below the true time. Two ulps above it (under a
    # microsecond until 2106) is never below it, so the due time is never early.
    now = clock.now()
    due_s = Fraction(now) + 2 * Fraction(math.ulp(now)) + seconds
    due = math.ceil(due_s * 1000)
    if due > LATEST_MS:
        longest = math.floor(Fraction(LATEST_MS, 1000) - (due_s - seconds))
        raise UsageError(
            f"{delay_name}: too far ahead: the latest due time is {rfc3339(LATEST_MS)}, "
            f"a delay of at most {longest} s ({longest // 86_400}d) from now; got {delay}"
        )
    return due


def _delay_seconds(delay: float | timedelta | None, name: str) -> Fraction:
    """The delay as an exact number of seconds (a float's own value, not a rounding)."""
    if delay is None:
        return Fraction(0)
    if isinstance(delay, timedelta):
        seconds = Fraction(delay // timedelta(microseconds=1), 1_000_000)
    elif isinstance(delay, float) and not math.isfinite(delay):
        raise UsageError(f"{name}: must be a finite number of seconds, got {delay}")
    elif isinstance(delay, int | float) and not isinstance(delay, bool):
        seconds = Fraction(delay)
    else:
        raise UsageError(f"{name}: must be seconds or a timedelta, got {delay!r}")
    if seconds < 0:
        raise UsageError(f"{name} must be >= 0 seconds, got {delay}")
    return seconds


def _due_at(at: datetime, name: str) -> int:
    if at.utcoffset() is None:
        raise UsageError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    due = ms_ceil(at)
    if due > LATEST_MS:
        raise UsageError(
            f"{name}: too far ahead: the latest due time is {rfc3339(LATEST_MS)}, "
            f"got {at.isoformat()}"
        )
    if due < EARLIEST_MS:
        raise UsageError(
            f"{name}: too far back: the earliest due time is {rfc3339(EARLIEST_MS)}, "
            f"got {at.isoformat()}"
        )
    return due


def _check_job_id(job_id: str) -> str:
    if (
        not isinstance(job_id, str)
        or not job_id
        or len(job_id) > MAX_JOB_ID
        or any(c.isspace() or unicodedata.category(c) in _UNFIT for c in job_id)
    ):
        raise UsageError(
            f"job id must be 1-{MAX_JOB_ID} characters without spaces or control "
            f"characters, got {job_id!r}"
        )
    if job_id.startswith(RESERVED_ID_PREFIX):
        raise UsageError(
            f"job id {job_id!r}: ids starting with {RESERVED_ID_PREFIX!r} are reserved for "
            "cron ticks; choose another id"
        )
    return job_id


class Client:
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
            redis, Keys(settings.key_prefix), int(settings.keep_finished * 1000)
        )
        self.origin = f"client:{socket.gethostname()}:{os.getpid()}"

    @classmethod
    async def connect(
        cls, settings: Settings | None = None, config: str | Path | None = None
    ) -> Client:
        """A client for the config's servers (or the embedded ones a daemon started)."""
        if settings is None:
            settings = load_settings(config_path(config, os.environ))
        redis_url, database_url, _ = resolve_urls(settings, start_embedded=False)
        return cls(settings, redis_client(redis_url), database_url=database_url)

    async def _history_store(self) -> PgStore | None:
        """Postgres, connected on first use: enqueueing works while Postgres is down."""
        if self.pg is None and self._database_url is not None:
            self.pg = await PgStore.connect(self._database_url, max_size=2)
        return self.pg

    async def history_store(self) -> PgStore | None:
        """The Postgres store behind this client (connected on first use), if any."""
        return await self._history_store()

    async def close(self) -> None:
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
    ) -> NewJob:
        """Validate a request into a NewJob (raises UsageError subclasses on bad input)."""
        spec = self.settings.tasks.get(task)
        if spec is None:
            raise UnknownTask(task, list(self.settings.tasks))
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise PayloadError(f"args must be a list, got {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise PayloadError(f"kwargs must be a mapping, got {type(kwargs).__name__}")
        return NewJob(
            id=_check_job_id(job_id) if job_id is not None else uuid.uuid4().hex,
            task=task,
            kind=spec.kind,
            args_json=_encode("args", list(args)),
            kwargs_json=_encode("kwargs", dict(kwargs or {})),
            due_at_ms=due_at_ms(self.clock, delay, at),
            max_attempts=spec.max_attempts,
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
    ) -> str:
        """Enqueue one job and return its id; with an existing `job_id` nothing changes."""
        job = self.new_job(task, args, kwargs, delay=delay, at=at, job_id=job_id)
        result = await self.store.enqueue(job, self.origin, self.clock.now_ms())
        return result.id

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[str]:
        """Enqueue many jobs made with new_job() in one round trip."""
        results = await self.store.enqueue_many(jobs, self.origin, self.clock.now_ms())
        return [r.id for r in results]

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
        )

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        pg = await self._history_store()
        if pg is None:
            raise UsageError("this client has no Postgres connection for history")
        return await pg.job_history(job_id)

    async def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.05) -> JobInfo:
        """Poll until the job reaches a terminal state; TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = await self.get(job_id)
            if job.done:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id!r} is still {job.state} after {timeout}s")
            await asyncio.sleep(poll)
