"""`runner jobs` and `Client.list`: jobs a page at a time, with live states.

Postgres answers the listing: it holds every job, finished ones included, and
indexes it for every filter (store/pg_listing.py). Redis holds the live jobs'
newest state, which the recorder writes to Postgres a moment later; where the two
differ, Redis is right, so each page's states are read from Redis in one round
trip and take precedence. A job whose live state no longer matches a --state
filter is left out of the page (a script acting on `--state scheduled` must not
be handed a job that is already running); the next page still starts after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from runner.client.input import checked
from runner.client.paging import DEFAULT_LIMIT
from runner.config.durations import parse_duration
from runner.errors import StoreUnavailable, UsageError
from runner.jobs import check_queue_name, ms_ceil, rfc3339
from runner.states import State
from runner.store import PgStore, check_limit, decode_cursor

_STATES = tuple(str(state) for state in State)
REDIS_DOWN_NOTE = (
    "Redis is unreachable: live states are unavailable; each state is the last one "
    "PostgreSQL recorded (a running or waiting job may have moved on)"
)


class LiveStates(Protocol):
    """What the listing needs of the Redis store."""

    def job_states(self, job_ids: Sequence[str]) -> Awaitable[dict[str, str]]: ...


@dataclass(frozen=True)
class ListQuery:
    """A validated listing request; times in ms since the epoch."""

    state: str | None = None
    task: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = DEFAULT_LIMIT
    after: str | None = None
    queue: str | None = None

    @classmethod
    def build(
        cls,
        *,
        now_ms: int,
        state: str | None = None,
        task: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        limit: int = DEFAULT_LIMIT,
        after: str | None = None,
        queue: str | None = None,
    ) -> ListQuery:
        """Check every argument before a server is asked (UsageError naming it);
        a timedelta is that long before `now_ms`."""
        if state is not None and state not in _STATES:
            raise UsageError(f"state: must be one of {', '.join(_STATES)}, got {state!r}")
        if task is not None and (not isinstance(task, str) or not task or "\x00" in task):
            raise UsageError(f"task: must be a task's name, got {task!r}")
        since_ms = _moment_ms(since, "since", now_ms)
        until_ms = _moment_ms(until, "until", now_ms)
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise UsageError(
                f"since ({rfc3339(since_ms)}) must be before until ({rfc3339(until_ms)})"
            )
        if after is not None:
            decode_cursor(after)
        if queue is not None:
            checked("queue", queue, check_queue_name)
        return cls(state, task, since_ms, until_ms, check_limit(limit), after, queue)


def _moment_ms(value: datetime | timedelta | None, name: str, now_ms: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return now_ms - value // timedelta(milliseconds=1)
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise UsageError(
            f"{name}: give a timezone-aware datetime or a timedelta (that long ago), got {value!r}"
        )
    return ms_ceil(value)


def moment_arg(text: str, name: str) -> datetime | timedelta:
    """A command line's time: a duration ago ("1h", "30m") or an ISO 8601 time (UTC
    when it has no offset, as every time runner prints is UTC)."""
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{name}: give a duration ago like 1h or 30m, or an ISO 8601 time like "
            f"2030-01-01T09:00Z, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    """One page of jobs in the JSON shape, and the cursor of the next (None: the last)."""

    jobs: list[dict[str, Any]]
    next_cursor: str | None
    query: ListQuery
    live: bool = True  # False: Redis was out of reach, states are Postgres' last word

    def as_json(self) -> dict[str, Any]:
        page: dict[str, Any] = {"jobs": self.jobs, "next_cursor": self.next_cursor}
        if not self.live:
            page["live_states"] = False
            page["note"] = REDIS_DOWN_NOTE
        return page


def _public(row: dict[str, Any], live_state: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "task": row["task"],
        "state": live_state or row["state"],
        "attempt": row["attempt"],
        "queue": row["queue"],
        "due_at": rfc3339(row["due_at_ms"]),
        "created_at": rfc3339(row["created_at_ms"]),
        "updated_at": rfc3339(row["updated_at_ms"]),
    }


async def list_jobs_live(pg: PgStore, live: LiveStates, query: ListQuery) -> Page:
    """A page from Postgres with Redis's states laid over it."""
    rows, next_cursor = await pg.list_jobs(
        state=query.state,
        task=query.task,
        since_ms=query.since_ms,
        until_ms=query.until_ms,
        limit=query.limit,
        after=query.after,
        queue=query.queue,
    )
    try:
        states = await live.job_states([row["id"] for row in rows]) if rows else {}
    except StoreUnavailable:  # the history still answers; say whose word it is
        return Page([_public(row, None) for row in rows], next_cursor, query, live=False)
    jobs = [_public(row, states.get(row["id"])) for row in rows]
    if query.state is not None:
        jobs = [job for job in jobs if job["state"] == query.state]
    return Page(jobs, next_cursor, query)
