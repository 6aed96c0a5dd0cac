"""What a caller gives for a job, checked before anything is stored: its id, its
arguments (JSON that PostgreSQL can hold, within the size limit) and its due time
(never earlier than asked). Every problem is a UsageError naming the argument."""

from __future__ import annotations

import base64
import math
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, TypeVar

import orjson

from runner.clock import Clock
from runner.config.settings import Settings
from runner.errors import PayloadError, UsageError
from runner.jobs import EARLIEST_MS, LATEST_MS, rfc3339, us_since_epoch

MAX_JOB_ID = 200
# Control characters (Postgres text cannot hold NUL; escapes garble a terminal) and
# lone surrogates (not UTF-8, so no server could store them) have no place in an id.
_UNFIT = ("Cc", "Cs")


# A JSON escape of the NUL character (an odd number of backslashes before u0000):
# PostgreSQL's jsonb cannot hold it, so the job's history could not be recorded.
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
RESERVED_ID_PREFIX = "cron:"  # cron ticks' ids: a user's id must not pre-empt a tick


T = TypeVar("T")


def new_job_id() -> str:
    """A random id for a job enqueued without one: 104 bits as 21 lowercase base32
    characters (a to z, 2 to 7). Shorter than a uuid's 32 hex digits, which matters:
    the id is stored twice per waiting job in Redis (its key, its member of the due
    set); a repeat is not expected in 10**15 ids."""
    return base64.b32encode(os.urandom(13)).decode("ascii").rstrip("=").lower()


def encode_args(name: str, value: Any) -> str:
    """`value` as JSON text; PayloadError naming `name` if JSON cannot hold it."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError as exc:
        raise PayloadError(f"{name} must be JSON-serialisable: {exc}") from None
    refuse_nul(name, text)
    return text


def encode_payload(settings: Settings, name: str, value: Any, kind: type) -> str:
    """`value` (args: a list, kwargs: a mapping) as JSON, checked as enqueue checks it."""
    wanted = list if kind is list else dict
    if kind is list and (isinstance(value, str | bytes) or not isinstance(value, Sequence)):
        raise PayloadError(f"{name} must be a list, got {type(value).__name__}")
    if kind is dict and not isinstance(value, Mapping):
        raise PayloadError(f"{name} must be a mapping, got {type(value).__name__}")
    text = encode_args(name, wanted(value))
    check_size(settings, name, text)
    return text


def check_size(settings: Settings, what: str, *texts: str) -> None:
    """A payload is stored in Redis, decoded on the daemon's loop and copied to
    Postgres: a huge one stalls every job's timing, so it is refused before that."""
    limit = settings.max_payload
    if sum(map(len, texts)) <= limit // 4:  # 4 bytes a character at most
        return
    size = sum(len(text.encode()) for text in texts)
    if size > limit:
        raise PayloadError(
            f"{what}: {size:,} bytes as JSON, over the limit of {limit:,} ([jobs] "
            f"max_payload in {settings.source}); keep large data in a file, a table or "
            "object storage and pass its name, or raise the limit"
        )


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
    return ms_rounded_up(due_at_us(clock, delay, at, names=names))


def ms_rounded_up(us: int) -> int:
    """Whole ms of a time in µs, rounded up: the due time every output shows."""
    return -(-us // 1000)


def due_at_us(
    clock: Clock,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    *,
    names: tuple[str, str] = ("delay", "at"),
) -> int:
    """The same due time in whole microseconds, rounded up: the precision the due set's
    scores keep, so a job due between two milliseconds starts then, not at the next."""
    delay_name, at_name = names
    if delay is not None and at is not None:
        raise UsageError(f"give either {delay_name} or {at_name}, not both")
    if at is not None:
        return _due_at(at, at_name)
    seconds = _delay_seconds(delay, delay_name)
    if seconds == 0:
        return clock.now_ms() * 1000  # due now: nothing can start before it was asked for
    # now() is a float: the clock's nanoseconds rounded twice (to a double, then
    # divided), up to about one ulp below the true time. Two ulps above it (under a
    # microsecond until 2106) is never below it, so the due time is never early.
    now = clock.now()
    due_s = Fraction(now) + 2 * Fraction(math.ulp(now)) + seconds
    due = math.ceil(due_s * 1_000_000)
    if due > LATEST_MS * 1000:
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
    """`at` in whole microseconds (a datetime holds no finer time)."""
    if at.utcoffset() is None:
        raise UsageError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    due = us_since_epoch(at)
    if due > LATEST_MS * 1000:
        raise UsageError(
            f"{name}: too far ahead: the latest due time is {rfc3339(LATEST_MS)}, "
            f"got {at.isoformat()}"
        )
    if due < EARLIEST_MS * 1000:
        raise UsageError(
            f"{name}: too far back: the earliest due time is {rfc3339(EARLIEST_MS)}, "
            f"got {at.isoformat()}"
        )
    return due


def known_id(job_id: str) -> str:
    """An id to look up: any text a job id could be (a reserved one included)."""
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_JOB_ID:
        raise UsageError(f"job id must be 1-{MAX_JOB_ID} characters, got {job_id!r}")
    return job_id


def _fit(job_id: str) -> bool:
    """No space, control character or lone surrogate: for plain ASCII (the usual id, and
    every id a source derives) two C-speed checks, else a look at each character."""
    if job_id.isascii():
        return job_id.isprintable() and " " not in job_id
    return not any(c.isspace() or unicodedata.category(c) in _UNFIT for c in job_id)


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id or len(job_id) > MAX_JOB_ID or not _fit(job_id):
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


def checked(name: str, value: Any, check: Callable[[Any], T]) -> T:
    """`check(value)`, its ValueError turned into a UsageError naming the argument."""
    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
