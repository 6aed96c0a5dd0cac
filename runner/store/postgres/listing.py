"""Jobs listed from PostgreSQL a page at a time, as fast on page 1,000 as on page 1.

A page is a keyset page: newest first by listing time (created_at, or updated_at
while the job's first event is unrecorded), then by id, starting strictly after
the last row of the previous page. A filter on a state, or on a named queue, has its
own index (migrations 002 and 008), so Postgres reads one index range in order and
stops after the page; every job, and one task's, are one such range per state, merged
in order (migration 012 says why). The cost is the page's size, not the table's, and
never an OFFSET's skip.

The cursor names that last row: base64url of "<listing time in µs>:<id>". It is
opaque to callers, and checked on the way in so that a mangled one is refused
with a message instead of quietly listing from somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from runner.client.paging import MAX_LIMIT
from runner.errors import UsageError
from runner.jobs import EPOCH, ms_to_datetime
from runner.states import State
from runner.store.failures import on_postgres
from runner.store.postgres.queries import query

# asyncpg sends these two as -infinity and infinity: "no bound" without a NULL test
# in the SQL, which would keep Postgres from using the bound in the index range.
_NO_SINCE = datetime.min.replace(tzinfo=UTC)
_NO_UNTIL = datetime.max.replace(tzinfo=UTC)
_US = timedelta(microseconds=1)
_MS = timedelta(milliseconds=1)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{1,400}")  # b64decode would skip anything else
_MICROS = re.compile(r"-?[0-9]{1,20}")
# Job ids hold no control characters (the client refuses them; text cannot hold NUL).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Where a range's conditions end in a page query: before its ORDER BY on the listing time.
_RANGE_END = re.compile(r"\n( *)ORDER BY COALESCE")


class BadCursor(UsageError):
    """An `after` value that is not a cursor a listing handed out."""

    def __init__(self, text: object, why: str) -> None:
        shown = text if not isinstance(text, str) or len(text) <= 80 else f"{text[:80]}..."
        super().__init__(
            f"--after: not a cursor runner printed ({why}): {shown!r}; pass the CURSOR "
            "of a 'next page' line (a page's next_cursor), or leave out --after to "
            "start from the newest job"
        )


@dataclass(frozen=True, order=True)
class Keyset:
    """A row's place in the listing order: (listing time, id), compared as a pair."""

    at: datetime
    id: str


def encode_cursor(place: Keyset) -> str:
    micros = (place.at - EPOCH) // _US
    return base64.urlsafe_b64encode(f"{micros}:{place.id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Keyset:
    """The place a cursor names; BadCursor saying what is wrong with it otherwise."""
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text):
        raise BadCursor(text, "not base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(text, "not base64url text") from None
    micros, sep, job_id = raw.partition(":")
    if not sep or not job_id or _CONTROL.search(job_id) or not _MICROS.fullmatch(micros):
        raise BadCursor(text, "not a listing position")
    try:
        at = EPOCH + int(micros) * _US
    except OverflowError:
        raise BadCursor(text, "its time is out of range") from None
    return Keyset(at, job_id)


def _moment(ms: int | None, name: str, default: datetime) -> datetime:
    try:
        moment = ms_to_datetime(ms)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    return default if moment is None else moment


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit: must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


class PageQuery(NamedTuple):
    name: str  # the listing's shape: its query's file (sql/NAME.sql) says what it reads
    sql: str
    args: tuple[Any, ...]


def page_query(
    *,
    state: str | None,
    task: str | None,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    after: str | None,
    queue: str | None = None,
) -> PageQuery:
    """The query the filters call for and its arguments, asking for one row more than
    the page: its presence says whether a next page exists.

    The upper bound is one keyset: --until is the place before every row listed at
    that time (id ''), a cursor the place of the last row shown; the nearer wins.
    """
    since = _moment(since_ms, "since", _NO_SINCE)
    bound = Keyset(_moment(until_ms, "until", _NO_UNTIL), "")
    if after is not None:
        bound = min(bound, decode_cursor(after))
    args: tuple[Any, ...] = (since, bound.at, bound.id, check_limit(limit) + 1)
    if state is None and queue not in (None, "default"):
        sql = query("list_jobs_in_queue")  # a named queue's own index
        if task is not None:
            sql = filtered(sql, f"task = ${len(args) + 2}::text")
            return PageQuery("list_jobs_in_queue", sql, (*args, queue, task))
        return PageQuery("list_jobs_in_queue", sql, (*args, queue))
    if state is not None and task is not None:
        name, args = "list_jobs_by_state_task", (*args, state, task)
        sql = query(name)
    elif state is not None:
        name, sql, args = "list_jobs_by_state", query("list_jobs_by_state"), (*args, state)
    elif task is not None:
        name, sql, args = "list_jobs_by_task", merged_over_states(task=True), (*args, task)
    else:
        name, sql = "list_jobs", merged_over_states(task=False)
    if queue is None:
        return PageQuery(name, sql, args)
    if queue == "default":  # its jobs' queue is NULL (migration 007)
        return PageQuery(name, filtered(sql, "queue IS NULL"), args)
    return PageQuery(name, filtered(sql, f"queue = ${len(args) + 1}::text"), (*args, queue))


@cache
def merged_over_states(*, task: bool) -> str:
    """A page of every job (or of task $5's) as one part per state merged in order
    (sql/list_jobs_merged.sql says why), and one part for states runner does not know."""
    part = "\n".join(
        line for line in query("list_jobs_merged").splitlines() if not line.startswith("--")
    )
    known = ",".join(State)
    conditions = [f"state = '{state}'" for state in State]
    conditions.append(f"state <> ALL ('{{{known}}}'::text[])")
    of_task = "\n   AND task = $5::text" if task else ""
    parts = "\nUNION ALL\n".join(part.format(state=c, task=of_task) for c in conditions)
    return f"SELECT * FROM (\n{parts}\n) AS page\nORDER BY listed_at DESC, id DESC\nLIMIT $4::int"


def filtered(sql: str, condition: str) -> str:
    """The page's query keeping only the rows that meet `condition` (a queue, or a
    task within a named queue), added to the range each of its parts reads: a filter
    on the rows read, not a range of its own."""
    return _RANGE_END.sub(lambda m: f"\n{m[1]}  AND {condition}\n{m[1]}ORDER BY COALESCE", sql)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - EPOCH) // _MS


def _row(record: Any) -> dict[str, Any]:
    return {
        "id": record["id"],
        "task": record["task"],
        "state": record["state"],
        "attempt": record["attempt"],
        "queue": record["queue"],
        "due_at_ms": _ms(record["due_at"]),
        "created_at_ms": _ms(record["created_at"]),
        "updated_at_ms": _ms(record["updated_at"]),
    }


@on_postgres
async def list_jobs(
    pool: Any,
    *,
    state: str | None = None,
    task: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    after: str | None = None,
    queue: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of jobs as Postgres recorded them, and the cursor of the next page
    (None on the last). `since_ms` is inclusive and `until_ms` exclusive, both on
    the listing time. UsageError (BadCursor for `after`) on malformed input."""
    _, sql, args = page_query(
        state=state, task=task, since_ms=since_ms, until_ms=until_ms, limit=limit, after=after,
        queue=queue,
    )  # fmt: skip
    records = await pool.fetch(sql, *args)
    if len(records) <= limit:
        return [_row(r) for r in records], None
    last = records[limit - 1]
    return [_row(r) for r in records[:limit]], encode_cursor(Keyset(last["listed_at"], last["id"]))
