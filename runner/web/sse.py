"""The live feed's side of HTTP: what a request asks for (its filters, where to resume)
and how an event is written on the wire (Server-Sent Events, text/event-stream).

Every problem with a request is a UsageError naming the parameter (a 400), found
before the stream starts: once it has, the status can no longer say anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from multidict import MultiMapping

from runner.errors import UsageError
from runner.events.feed import Gap
from runner.events.filters import TransitionFilter
from runner.events.transition import Transition, split_position
from runner.states import State
from runner.web.output import dumps

PARAMS = ("task", "job", "state", "last_event_id")
STATES = tuple(str(state) for state in State)


def _values(query: MultiMapping[str], name: str) -> list[str]:
    """Every value of a parameter, repeated (?state=a&state=b) or comma-separated
    (?state=a,b), blanks dropped."""
    return [v.strip() for text in query.getall(name, []) for v in text.split(",") if v.strip()]


def feed_filter(query: MultiMapping[str]) -> TransitionFilter:
    """The transitions a request asks for: by task, job id and state moved to."""
    unknown = sorted(set(query) - set(PARAMS))
    if unknown:
        raise UsageError(
            f"unknown query parameter {', '.join(unknown)}: GET /api/events takes "
            f"{', '.join(PARAMS)}"
        )
    states = _values(query, "state")
    wrong = [s for s in states if s not in STATES]
    if wrong:
        raise UsageError(
            f"state: no such state {', '.join(map(repr, wrong))}; the states are "
            f"{', '.join(STATES)}"
        )
    return TransitionFilter.of(_values(query, "task"), _values(query, "job"), states)


def resume_position(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """Where to resume: the Last-Event-ID header (what a reconnecting EventSource
    sends), else the last_event_id parameter; None to start from now."""
    name, position = "Last-Event-ID", headers.get("Last-Event-ID", "").strip()
    if not position:
        name, position = "last_event_id", query.get("last_event_id", "").strip()
    if not position:
        return None
    try:
        split_position(position)
    except ValueError:
        raise UsageError(
            f"{name}: {position[:100]!r} is not an event id of this feed (they look like "
            "'1733550000000-0/0'); send the id of the last event received, or none to "
            "start from now"
        ) from None
    return position


def event(name: str, data: Any, event_id: str | None = None) -> bytes:
    """One event: its id (what a client resumes after), its name and its data as one
    line of JSON (no newline can occur in it)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {dumps(data)}\n\n".encode()


def transition_events(batch: Iterable[Transition]) -> bytes:
    """Transitions as `transition` events, each with its position as the event id."""
    return b"".join(event("transition", t.as_feed_json(), t.position) for t in batch)


def gap_event(gap: Gap) -> bytes:
    """Events between the position a client resumed after and `first_kept` (the
    first position the stream still holds) were trimmed: some may be missing."""
    return event(
        "gap", {"after": gap.after, "first_kept": f"{gap.first_kept}/0",
                "message": "the stream no longer holds every event after this id "
                           "([events] keep): some may be missing"},
    )  # fmt: skip


def comment(text: str) -> bytes:
    """A line every client ignores: keeps proxies from closing a quiet connection."""
    return f": {text}\n\n".encode()


def retry(ms: int) -> bytes:
    """How long an EventSource waits before it reconnects by itself."""
    return f"retry: {ms}\n\n".encode()
