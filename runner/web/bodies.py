"""What an API request gives, checked and turned into the client's arguments.

Every problem is a UsageError naming the field (a 400), raised before any server
is asked; the client's own checks (task, payload, id, due time) follow with the
same messages the CLI prints. An unknown field is an error rather than ignored:
a misspelt "dely" must not enqueue a job due now.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from runner.client.listing import moment_arg
from runner.client.paging import DEFAULT_LIMIT
from runner.config.durations import parse_duration
from runner.errors import UsageError
from runner.store import BadCursor, decode_cursor

ENQUEUE_FIELDS = ("task", "args", "kwargs", "delay", "at", "id", "queue", "priority",
                  "depends_on", "on_failure", "pass_results")  # fmt: skip
UPDATE_FIELDS = ("args", "kwargs", "delay", "at", "retries", "timeout", "priority")
LIST_PARAMS = ("state", "task", "since", "until", "limit", "after", "queue")
MAX_BATCH = 10_000
MAX_WAIT_S = 60.0  # the longest an enqueue may wait for room (max_queued) over HTTP


def parse_json(raw: bytes) -> Any:
    """The request body as JSON; UsageError with the parser's reason."""
    if not raw.strip():
        raise UsageError("the request body is empty: send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"the request body is not valid JSON: {exc}") from None


def _object(value: Any, known: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise UsageError(
            f"{what}: unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )
    return value


def _at(value: Any) -> datetime | None:
    """An RFC 3339 time with its offset; None when not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"at: give an RFC 3339 time like 2030-01-01T09:00:00Z, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"at: not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise UsageError(f"at: give a UTC offset, e.g. {value}Z or {value}+02:00")
    return moment


def _duration(value: Any, name: str) -> float:
    """Seconds from a number (checked by the client, as the Python API's are) or a
    duration written as the config and the CLI write it ("30s", "2m", "250ms")."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return parse_duration(value)
    raise UsageError(
        f"{name}: give seconds as a number, or a duration such as '30s', '2m', '1h' or "
        f"'250ms', got {value!r}"
    )


def _when(body: Mapping[str, Any]) -> dict[str, Any]:
    when: dict[str, Any] = {}
    if body.get("delay") is not None:
        when["delay"] = _duration(body["delay"], "delay")
    if body.get("at") is not None:
        when["at"] = _at(body["at"])
    return when


def enqueue_arguments(value: Any, what: str = "the request body") -> dict[str, Any]:
    """Keyword arguments for Client.new_job / enqueue_result from one job's JSON."""
    body = _object(value, ENQUEUE_FIELDS, what)
    task = body.get("task")
    if not isinstance(task, str) or not task:
        raise UsageError(f"{what}: task must be a task's name, got {task!r}")
    return {
        "task": task,
        "args": body.get("args", []),
        "kwargs": body.get("kwargs"),
        "job_id": body.get("id"),
        "queue": body.get("queue"),
        "priority": body.get("priority"),
        "depends_on": body.get("depends_on"),
        "on_failure": body.get("on_failure"),
        "pass_results": body.get("pass_results") is True,
        **_when(body),
    }


def take_wait(value: Any) -> float | None:
    """The body's "wait" (seconds, or a duration, up to MAX_WAIT_S), taken out of it:
    how long an enqueue refused at its task's max_queued waits for room."""
    if not isinstance(value, dict) or value.get("wait") is None:
        return None
    wait = _duration(value.pop("wait"), "wait")
    if not 0 <= wait <= MAX_WAIT_S:
        raise UsageError(f"wait: give 0 to {MAX_WAIT_S:g} seconds, got {wait!r}")
    return wait


def batch_arguments(value: Any) -> list[dict[str, Any]]:
    """One enqueue_arguments() per job of {"jobs": [...]}; a problem names its index."""
    body = _object(value, ("jobs",), "the request body")
    jobs = body.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise UsageError('the request body must be {"jobs": [one or more jobs]}')
    if len(jobs) > MAX_BATCH:
        raise UsageError(f"at most {MAX_BATCH:,} jobs a batch, got {len(jobs):,}")
    return [enqueue_arguments(job, f"jobs[{i}]") for i, job in enumerate(jobs)]


def update_arguments(value: Any) -> dict[str, Any]:
    """Keyword arguments for Client.request("update", ...) from a PATCH body."""
    body = _object(value, UPDATE_FIELDS, "the request body")
    changes = {key: body[key] for key in ("args", "kwargs", "retries", "priority")
               if body.get(key) is not None}  # fmt: skip
    if body.get("timeout") is not None:
        changes["timeout"] = _duration(body["timeout"], "timeout")
    return {**changes, **_when(body)}


def list_arguments(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for Client.list from GET /api/jobs's query string: the CLI's
    filters, spelt as its options (since=1h or an ISO 8601 time)."""
    unknown = sorted(set(query) - set(LIST_PARAMS))
    if unknown:
        raise UsageError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(LIST_PARAMS)}"
        )
    limit = query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit_value = int(limit)
    except ValueError:
        raise UsageError(f"limit: not a whole number: {limit!r}") from None
    return {
        "state": query.get("state") or None,
        "task": query.get("task") or None,
        "since": moment_arg(query["since"], "since") if query.get("since") else None,
        "until": moment_arg(query["until"], "until") if query.get("until") else None,
        "limit": limit_value,
        "after": _cursor(query.get("after") or None),
        "queue": query.get("queue") or None,
    }


def _cursor(after: str | None) -> str | None:
    """`after` if it is a cursor a listing handed out (checked here so the error
    speaks of the API's parameter rather than of the CLI's option)."""
    if after is not None:
        try:
            decode_cursor(after)
        except BadCursor:
            shown = after if len(after) <= 80 else f"{after[:80]}..."
            raise UsageError(
                f"after: not a cursor this API handed out: {shown!r}; pass the next_cursor "
                "of the page before, or leave out after to start from the newest job"
            ) from None
    return after


def minutes_argument(query: Mapping[str, str], default: int = 60, most: int = 1440) -> int:
    text = query.get("minutes", str(default))
    try:
        minutes = int(text)
    except ValueError:
        raise UsageError(f"minutes: not a whole number: {text!r}") from None
    if not 1 <= minutes <= most:
        raise UsageError(f"minutes: must be from 1 to {most}, got {minutes}")
    return minutes


def replay_target(value: Any) -> str | None:
    """The event id a replay names, or None for {"all": true}: one of them, exactly."""
    body = _object(value, ("event_id", "all"), "the request body")
    event_id, every = body.get("event_id"), body.get("all")
    if (event_id is None) == (every is not True):
        raise UsageError('give {"event_id": "JOB_ID:SEQ"} or {"all": true}')
    if event_id is not None and not (isinstance(event_id, str) and event_id):
        raise UsageError(f"event_id: must be a string like 'JOB_ID:SEQ', got {event_id!r}")
    return event_id
