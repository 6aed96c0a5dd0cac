"""The values that travel between the client, the store and the engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_QUEUE = "default"
QUEUE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,47}")
# Priorities within a queue: 0 (the default) to 9 (the most urgent); see lua/claim.lua.
PRIORITIES = range(10)


def check_queue_name(name: object) -> str:
    """The name if a queue may have it (it is part of its keys' names), else ValueError."""
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise ValueError(
            "a queue name is 1-48 characters of a-z, 0-9, '_', '.' and '-', starting with "
            f"a letter or digit; got {name!r}"
        )
    return name


def check_priority(value: object) -> int:
    """The priority if it is one, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in PRIORITIES:
        raise ValueError(
            f"a priority is a whole number from {PRIORITIES[0]} (the default) to "
            f"{PRIORITIES[-1]} (the most urgent); got {value!r}"
        )
    return value


def ms_ceil(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded up (so a due time is never early); exact
    integer arithmetic, since a float timestamp can land below a whole millisecond."""
    return -((EPOCH - moment) // timedelta(milliseconds=1))


def us_since_epoch(moment: datetime) -> int:
    """Microseconds since the epoch, exact (a datetime holds no finer time)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


# The due times a datetime can show, in whole ms: 0001-01-01 to 9999-12-31T23:59:59.999Z.
EARLIEST_MS = ms_ceil(datetime.min.replace(tzinfo=UTC))
LATEST_MS = ms_ceil(datetime.max.replace(microsecond=999_000, tzinfo=UTC))


def ms_to_datetime(ms: int | None) -> datetime | None:
    """The UTC datetime of a time in ms; ValueError if no datetime can hold it."""
    if ms is None:
        return None
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise ValueError(f"{ms} ms since the epoch is outside what a datetime can show")
    return EPOCH + timedelta(milliseconds=ms)


def rfc3339(ms: int | None) -> str | None:
    """UTC RFC 3339 with milliseconds, the one time format of every JSON output.

    A time no datetime can hold (written into Redis by someone else) comes out as
    its raw value, "<ms> ms since the epoch (out of range)", so a reader never fails.
    """
    try:
        moment = ms_to_datetime(ms)
    except ValueError:
        return f"{ms} ms since the epoch (out of range)"
    return None if moment is None else rfc3339_at(moment)


def rfc3339_at(moment: datetime) -> str:
    """An aware datetime in RFC 3339 with milliseconds, in its own offset ("Z" for UTC):
    how a cron schedule's local times are shown."""
    text = moment.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True)
class NewJob:
    """A job as the client asks for it; args and kwargs already encoded as JSON."""

    id: str
    task: str
    kind: str
    args_json: str
    kwargs_json: str
    due_at_ms: int  # rounded up to a whole ms: what the job's hash and history show
    max_attempts: int
    extra: dict[str, str] = field(default_factory=dict)
    # The due time to the microsecond, when asked for more precisely than due_at_ms:
    # the due set's score keeps it, so the job starts then (None: due_at_ms exactly).
    due_at_us: int | None = None
    # For a cron tick: (schedule name, tick in ms, overlap policy); see enqueue.lua.
    guard: tuple[str, int, str] | None = None
    # The caller chose the id (a generated one is new by construction): the id may
    # name a job that Redis has forgotten and only Postgres remembers.
    chosen_id: bool = False
    queue: str = "default"  # see runner/store/redis/keys.py
    priority: int = 0  # 0 (the default) to 9 (the most urgent), see lua/claim.lua


@dataclass(frozen=True)
class EnqueueResult:
    id: str
    created: bool
    state: str
    refused: str | None = None  # why not, for a job refused at its task's max_queued


class ClaimedJob(NamedTuple):
    """A job this daemon now owns and must start at once (a tuple: made per job).

    `claim` is the seq of the claim's event: with the daemon's id it names this run
    alone, where the attempt does not (a retried job counts its attempts anew). Every
    fence (finish, renew, a cancel's message) names the run by it."""

    id: str
    task: str
    kind: str
    attempt: int
    claim: int
    max_attempts: int
    args_json: str
    kwargs_json: str
    due_at_ms: float  # to the microsecond: the score it was claimed at (a job held
    # ahead of it, see runner/daemon/lead.py, starts at this time exactly)
    timeout: float | None = None  # set by an update; None: the task's own
    queue: str = "default"  # the queue it was claimed from: its finish goes there


@dataclass(frozen=True)
class ClaimResult:
    jobs: list[ClaimedJob]
    next_due_ms: dict[str, float | None]
    set_aside: list[tuple[str, str]] = field(default_factory=list)  # (job id, reason)


class Outcome(NamedTuple):
    """How one attempt ended, ready for the finish script (a tuple: made per job)."""

    job_id: str
    attempt: int
    claim: int  # the run it ends (ClaimedJob.claim): the finish script fences on it
    action: str  # a key of states.TRANSITIONS: succeed, fail, retry_later, release
    due_at_ms: int | None = None
    result_json: str = ""
    error: str = ""
    detail_json: str = "{}"
    give_back: bool = False  # handed back at shutdown: the attempt does not count
    queue: str = "default"  # the job's queue (ClaimedJob.queue)
    # A run that handed work out (runner/workflows/fan_out.py): the jobs its dependents
    # wait for instead of it, as a JSON list; "" for any other run.
    hand_over: str = ""


@dataclass(frozen=True)
class ReapedJob:
    id: str
    state: str
    attempt: int
    owner: str
    set_aside: str = ""  # the reason, when the job was malformed and set aside


@dataclass(frozen=True)
class JobRecord:
    """A job's live record as Redis holds it."""

    id: str
    task: str
    state: str
    attempt: int
    max_attempts: int
    due_at_ms: int | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    created_at_ms: int | None
    updated_at_ms: int | None
    owner: str | None
    seq: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    queue: str = "default"
    priority: int = 0


class Event(NamedTuple):
    """One state transition, in the order the scripts write it to the stream."""

    job_id: str
    seq: int
    from_state: str | None
    to_state: str
    at_ms: int
    daemon: str
    attempt: int
    detail_json: str
