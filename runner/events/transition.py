"""One job's transition as the outside sees it, read back from the transition stream.

A stream entry is what one Lua call wrote: a JSON array of events, each
`[job_id, seq, from, to, at_ms, daemon, attempt, detail_json]`. Anyone who can
write to Redis can write to the stream, so an entry or an event that is not of
that shape is skipped here (the recorder sets such entries aside), never a crash.

Two ids name a transition. `event_id` (job id and seq) is the same however often
it is delivered: a webhook receiver's idempotency key. `position` (stream entry id
and the event's index in it) is where it lies in the stream: a live feed resumes
after it (`Last-Event-ID`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from runner.jobs import DEFAULT_QUEUE, QUEUE_NAME


@dataclass(frozen=True)
class Transition:
    position: str  # "[<queue>@]<stream entry id>/<index in the entry>"
    job_id: str
    seq: int
    from_state: str  # "" for a job's first event
    to_state: str
    at_ms: int
    daemon: str  # who made the change: a daemon's id, "client", "cli:...", "cron"...
    attempt: int
    detail: dict[str, Any] = field(default_factory=dict)
    task: str | None = None  # filled in by TaskNames: events carry it only when enqueued

    @property
    def event_id(self) -> str:
        return f"{self.job_id}:{self.seq}"

    def as_json(self) -> dict[str, Any]:
        """The transition as webhooks, the live feed and `runner events --json` show it."""
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "job_id": self.job_id,
            "task": self.task,
            "seq": self.seq,
            "from_state": self.from_state or None,
            "to_state": self.to_state,
            "at": rfc3339_ms(self.at_ms),
            "attempt": self.attempt,
            "by": self.daemon,
        }
        for key in ("result", "error"):
            if key in self.detail:
                body[key] = self.detail[key]
        return body

    def as_feed_json(self) -> dict[str, Any]:
        """as_json() with the position: what the readers that can resume after it show
        (the live feed's data, `runner events --json`)."""
        return {**self.as_json(), "position": self.position}


def rfc3339_ms(at_ms: int) -> str:
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def split_position(position: str) -> tuple[str, int]:
    """("<entry id>", index) of a position; ValueError for anything else (a
    `Last-Event-ID` is input)."""
    return parse_position(position)[1:]


def parse_position(position: str) -> tuple[str, str, int]:
    """(queue, "<entry id>", index) of a position, "[<queue>@]<entry id>/<index>"
    (the default queue's have no "<queue>@", as before queues); ValueError for
    anything else."""
    queue, at, rest = position.rpartition("@")
    entry_id, sep, index = rest.rpartition("/")
    ms, dash, seq = entry_id.partition("-")
    named = not at or QUEUE_NAME.fullmatch(queue)
    if not (named and sep and dash and ms.isdigit() and seq.isdigit() and index.isdigit()):
        raise ValueError(f"not an event position ('[<queue>@]<ms>-<n>/<index>'): {position!r}")
    return queue or DEFAULT_QUEUE, entry_id, int(index)


def transitions(
    entry_id: str, payload: str | None, queue: str = DEFAULT_QUEUE
) -> Iterator[Transition]:
    """The well-formed events of one stream entry (of `queue`'s stream), in order."""
    if payload is None:
        return
    try:
        events = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return
    if not isinstance(events, list):
        return
    where = entry_id if queue == DEFAULT_QUEUE else f"{queue}@{entry_id}"
    for index, event in enumerate(events):
        transition = _transition(f"{where}/{index}", event)
        if transition is not None:
            yield transition


def _transition(position: str, event: Any) -> Transition | None:
    if not (isinstance(event, list) and len(event) == 8):
        return None
    job_id, seq, from_state, to_state, at_ms, daemon, attempt, detail_json = event
    if not (
        isinstance(job_id, str)
        and _whole(seq)
        and isinstance(from_state, str)
        and isinstance(to_state, str)
        and _whole(at_ms)
        and _whole(attempt)
    ):
        return None
    detail = _detail(detail_json)
    task = detail.get("task") if seq == 1 and isinstance(detail.get("task"), str) else None
    return Transition(
        position, job_id, int(seq), from_state, to_state, int(at_ms), str(daemon),
        int(attempt), detail, task,
    )  # fmt: skip


def _whole(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)


def _detail(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        detail = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return detail if isinstance(detail, dict) else {}
