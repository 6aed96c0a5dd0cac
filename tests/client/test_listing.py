"""Contract tests for listing jobs: filters, keyset pages, cursors, live states, plans.

Rows are written straight into runner_jobs where a test needs many of them or
exact times; the live-state test goes through Redis and the recorder's query.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from runner.cli.render.listing import render
from runner.cli.time_text import TimeText
from runner.client.listing import ListQuery, Page, list_jobs_live
from runner.errors import UsageError
from runner.jobs import EPOCH, Event, NewJob, rfc3339_at
from runner.states import State
from runner.store.postgres.listing import BadCursor, list_jobs, page_query
from runner.store.postgres.store import PgStore, events_json
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli, daemon_config_file

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
STATES = ("scheduled", "running", "succeeded", "failed")
TASKS = ("echo", "resize", "mail")

INSERT = """
INSERT INTO runner_jobs (id, task, state, attempt, seq, created_at, updated_at, due_at)
VALUES ($1, $2, $3, $4, 1, $5, $6, $5)
"""


def job_rows(count: int, start: int = 0) -> list[tuple[Any, ...]]:
    """Jobs with every state and task, three to a creation time (ties that only the
    id breaks) and times with microseconds (a cursor must keep them exactly)."""
    rows = []
    for i in range(start, start + count):
        created = T0 + timedelta(milliseconds=10 * (i // 3), microseconds=7)
        rows.append((f"job-{i:05d}", TASKS[i % 3], STATES[i % 4], i % 3, created, created + MS))
    return rows


async def insert(pg: PgStore, rows: list[tuple[Any, ...]]) -> None:
    await pg.pool.executemany(INSERT, rows)


def newest_first(rows: list[tuple[Any, ...]]) -> list[str]:
    """The listing order, computed in Python: (listing time, id), descending."""
    return [r[0] for r in sorted(rows, key=lambda r: (r[4] or r[5], r[0]), reverse=True)]


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // MS


async def walk(pg: PgStore, limit: int, **filters: Any) -> list[str]:
    """Every page of a listing, following the cursors to the end."""
    ids: list[str] = []
    after = None
    while True:
        rows, after = await list_jobs(pg.pool, limit=limit, after=after, **filters)
        ids += [row["id"] for row in rows]
        if after is None:
            return ids


FILTERS: list[dict[str, Any]] = [
    {},
    {"state": "failed"},
    {"task": "resize"},
    {"state": "scheduled", "task": "mail"},
    {"since_ms": ms(T0 + timedelta(milliseconds=300))},
    {"until_ms": ms(T0 + timedelta(milliseconds=500))},
    {"state": "running", "since_ms": ms(T0 + 200 * MS), "until_ms": ms(T0 + 800 * MS)},
]


def matches(
    row: tuple[Any, ...], since_ms: int = 0, until_ms: int | None = None, **eq: str
) -> bool:
    """Whether a row belongs to a listing with these filters (as list_jobs takes them)."""
    _, task, state, _, created, updated = row
    listed = created or updated
    return (
        all({"task": task, "state": state}[k] == v for k, v in eq.items())
        and EPOCH + since_ms * MS <= listed
        and (until_ms is None or listed < EPOCH + until_ms * MS)
    )


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
async def test_each_filter_lists_its_jobs_newest_first(
    pg: PgStore, filters: dict[str, Any]
) -> None:
    """Each filter shape returns exactly its jobs, newest first, ties broken by id,
    across pages; since is inclusive and until exclusive."""
    rows = job_rows(300)
    await insert(pg, rows)
    expected = newest_first([r for r in rows if matches(r, **filters)])
    assert expected, "the filter must select something"
    assert await walk(pg, 7, **filters) == expected


async def test_job_without_recorded_creation_is_listed_at_its_latest_time(pg: PgStore) -> None:
    """A row whose first event is not recorded yet (created_at NULL) is listed, at
    its updated_at, rather than left out; its created_at shows as null."""
    rows = job_rows(6)
    orphan = ("orphan", None, "running", 1, None, T0 + 15 * MS)
    await insert(pg, [*rows, orphan])
    listed, _ = await list_jobs(pg.pool, limit=50)
    assert [r["id"] for r in listed] == newest_first([*rows, orphan])
    row = next(r for r in listed if r["id"] == "orphan")
    assert (row["created_at_ms"], row["updated_at_ms"]) == (None, ms(T0 + 15 * MS))
    since, _ = await list_jobs(pg.pool, limit=50, since_ms=ms(T0 + 10 * MS))
    assert [r["id"] for r in since] == ["orphan", "job-00005", "job-00004", "job-00003"]


async def test_recorded_jobs_are_listed_with_their_times(pg: PgStore) -> None:
    """Rows the recorder's own query wrote list with task, state and times in ms."""
    at = ms(T0)
    enqueued = f'{{"task":"echo","args":[],"kwargs":{{}},"due_at":{at + 500}}}'
    await pg.write_events(
        [
            events_json([Event("a", 1, "", "scheduled", at, "client", 0, enqueued)]),
            events_json([Event("b", 1, "", "scheduled", at + 1, "client", 0, enqueued)]),
            events_json([Event("a", 2, "scheduled", "running", at + 600, "d1", 1, "{}")]),
        ]
    )
    rows, cursor = await list_jobs(pg.pool, limit=50)
    assert cursor is None
    assert rows == [
        {"id": "b", "task": "echo", "state": "scheduled", "attempt": 0, "queue": "default",
         "due_at_ms": at + 500, "created_at_ms": at + 1, "updated_at_ms": at + 1},
        {"id": "a", "task": "echo", "state": "running", "attempt": 1, "queue": "default",
         "due_at_ms": at + 500, "created_at_ms": at, "updated_at_ms": at + 600},
    ]  # fmt: skip


async def test_a_listing_of_one_queue_shows_only_its_jobs(pg: PgStore) -> None:
    """`runner jobs --queue Q`: the queue each enqueue event names (none: default)."""
    at = ms(T0)
    plain = f'{{"task":"echo","args":[],"kwargs":{{}},"due_at":{at}}}'
    queued = f'{{"task":"echo","args":[],"kwargs":{{}},"due_at":{at},"queue":"mail"}}'
    written = [
        Event("p", 1, "", "scheduled", at, "c", 0, plain),
        Event("m", 1, "", "scheduled", at + 1, "c", 0, queued),
    ]
    await pg.write_events([events_json(written)])
    for queue, ids in (("mail", ["m"]), ("default", ["p"]), (None, ["m", "p"])):
        for state in (None, "scheduled"):
            for task in (None, "echo"):
                rows, _ = await list_jobs(pg.pool, limit=50, queue=queue, state=state, task=task)
                assert [r["id"] for r in rows] == ids, (queue, state, task)


async def test_pages_meet_every_job_once_while_jobs_arrive(pg: PgStore) -> None:
    """A walk through the pages while new jobs are recorded, newer than all (which
    shift every OFFSET page) and between old ones, meets every job that existed when
    it began exactly once, in order: no duplicate, no gap."""
    rows = job_rows(900)
    await insert(pg, rows)
    seen: list[str] = []

    async def arrive(batch: int) -> None:
        top = T0 + timedelta(hours=1, milliseconds=batch)
        between = T0 + timedelta(milliseconds=10 * (299 - 10 * batch) + 5)
        new = [(f"new-{batch}-top", top), (f"new-{batch}-mid", between)]
        await insert(pg, [(job_id, "echo", "scheduled", 0, at, at) for job_id, at in new])

    # New jobs arrive between every two pages of the walk (a task running beside it
    # could, on a loaded machine, do all its inserts before the walk or after it).
    after, batch = None, 0
    while True:
        page, after = await list_jobs(pg.pool, limit=37, after=after)
        seen += [row["id"] for row in page]
        if after is None:
            break
        if batch < 30:
            await arrive(batch)
            batch += 1
    assert batch > 20, "the walk met too few arrivals"
    assert [job_id for job_id in seen if not job_id.startswith("new-")] == newest_first(rows)
    assert len(seen) == len(set(seen))
    everything = await walk(pg, 1000)
    assert seen == [job_id for job_id in everything if job_id in set(seen)]  # in order


async def test_last_page_has_no_cursor(pg: PgStore) -> None:
    """A page that ends the listing hands out no cursor, even when it is full."""
    await insert(pg, job_rows(10))
    first, cursor = await list_jobs(pg.pool, limit=5)
    assert cursor is not None
    second, cursor = await list_jobs(pg.pool, limit=5, after=cursor)
    assert cursor is None
    assert len(first) == len(second) == 5


def bad_cursors() -> Iterator[str]:
    yield "not base64 !"
    yield "bm90IGEgY3Vyc29y"  # base64 of "not a cursor"
    yield "MTIzOg"  # "123:" has no id
    yield "eHl6OmpvYg"  # "xyz:job": the time is not a number
    yield "OTk5OTk5OTk5OTk5OTk5OTk5OmpvYg"  # a time past any datetime
    yield "MTIzOmpvYgA"  # "123:job\0": no id holds a control character
    yield "_w"  # not UTF-8
    yield "MTIzOmpvYg!"  # a valid cursor with a character base64url has not
    yield ""


@pytest.mark.parametrize("cursor", list(bad_cursors()))
async def test_a_cursor_runner_did_not_print_is_refused(pg: PgStore, cursor: str) -> None:
    """A mangled or invented cursor is a usage error that says what to pass instead,
    raised before Postgres is asked (a client's query fails the same way)."""
    with pytest.raises(BadCursor, match=r"^--after: not a cursor runner printed") as caught:
        await list_jobs(pg.pool, limit=5, after=cursor)
    assert isinstance(caught.value, UsageError)
    assert "next page" in str(caught.value)
    with pytest.raises(BadCursor):
        ListQuery.build(now_ms=0, after=cursor)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit: must be a whole number from 1 to 1000, got 0"),
        ({"limit": 1001}, "limit: must be a whole number from 1 to 1000"),
        ({"state": "done"}, "state: must be one of scheduled, running,"),
        ({"since": timedelta(hours=1), "until": timedelta(hours=2)}, "must be before until"),
        ({"since": datetime(2030, 1, 1)}, "since: give a timezone-aware datetime"),
        ({"task": ""}, "task: must be a task's name"),
        ({"task": "a\x00b"}, "task: must be a task's name"),
    ],
)
def test_malformed_requests_are_refused_before_any_server(
    arguments: dict[str, Any], message: str
) -> None:
    """Each malformed argument gets a UsageError naming it."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        ListQuery.build(now_ms=ms(T0), **arguments)


async def test_live_state_from_redis_wins(pg: PgStore, store: RedisStore) -> None:
    """Where Redis holds a newer state than Postgres recorded, the page shows Redis's;
    a job whose live state left a --state filter is dropped from that page."""
    now = ms(T0)
    for job_id in ("claimed", "waiting"):
        await store.enqueue(NewJob(job_id, "echo", "async", "[]", "{}", now, 3), "client", now)
    await store.ensure_event_group()
    entries = await store.read_events("test", 100, None)
    await pg.write_events([entry.payload or "[]" for entry in entries])
    await insert(pg, [("gone", "echo", "succeeded", 1, T0 - MS, T0 - MS)])  # Redis forgot it
    claimed = await store.claim_due(now, {"async": 1}, "d1", now + 30_000)
    assert [job.id for job in claimed.jobs] == ["claimed"]  # not recorded yet

    page = await list_jobs_live(pg, store, ListQuery())
    assert {job["id"]: job["state"] for job in page.jobs} == {
        "claimed": "running", "waiting": "scheduled", "gone": "succeeded",
    }  # fmt: skip
    scheduled = await list_jobs_live(pg, store, ListQuery(state="scheduled"))
    assert [job["id"] for job in scheduled.jobs] == ["waiting"]
    assert set(page.jobs[0]) == {
        "id", "task", "queue", "state", "attempt", "due_at", "created_at", "updated_at",
    }  # fmt: skip
    assert page.jobs[-1]["created_at"] == "2027-01-15T07:59:59.999Z"


def test_render_prints_a_table_and_the_next_page_command() -> None:
    """The text view is a table (times in RFC 3339 UTC with ms, or local with
    --local) with the command for the next page (absolute times, the same filters);
    --json prints the jobs and the cursor."""
    job = {"id": "j1", "task": None, "state": "running", "attempt": 2,
           "due_at": "2027-01-15T08:00:00.000Z", "created_at": None,
           "updated_at": "2027-01-15T08:00:01.250Z"}  # fmt: skip
    query = ListQuery(state="running", task="a b", since_ms=ms(T0), limit=20)
    page = Page([job], "CURSOR", query)
    lines = render(page, as_json=False).splitlines()
    assert lines[0].split() == [
        "id",
        "task",
        "queue",
        "state",
        "attempt",
        "due",
        "created",
        "updated",
    ]
    assert lines[1].split() == [
        "j1", "-", "default", "running", "2", "2027-01-15T08:00:00.000Z", "-",
        "2027-01-15T08:00:01.250Z",
    ]  # fmt: skip
    assert lines[2] == (
        "next page: runner jobs --state running --task 'a b' --since 2027-01-15T08:00:00.000Z "
        "--limit 20 --after CURSOR"
    )
    local = render(page, as_json=False, times=TimeText(local=True)).splitlines()
    assert local[1].split()[5] == rfc3339_at(T0.astimezone())  # this machine's zone
    assert local[2].endswith(f"--since {rfc3339_at(T0.astimezone())} --limit 20 "
                             "--after CURSOR --local")  # fmt: skip
    assert orjson.loads(render(page, as_json=True)) == {"jobs": [job], "next_cursor": "CURSOR"}
    assert render(Page([], None, ListQuery()), as_json=False) == "no jobs match"


# EXPLAIN (GENERIC_PLAN) takes no parameter values, and asyncpg binds one per $n:
# PL/pgSQL's EXECUTE sends the statement with none.
GENERIC_PLAN = """
CREATE FUNCTION pg_temp.generic_plan(statement text) RETURNS SETOF json
LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY EXECUTE 'EXPLAIN (GENERIC_PLAN, FORMAT JSON) ' || statement; END
$$
"""
FILL = """
INSERT INTO runner_jobs (id, task, state, attempt, seq, created_at, updated_at)
SELECT md5(i::text), 'task_' || (i % 20), (ARRAY['scheduled','running','succeeded',
       'failed','retrying','paused','cancelled'])[1 + i % 7], 1, 1,
       CASE WHEN i % 100 = 0 THEN NULL ELSE $1::timestamptz - i * interval '1 s' END,
       $1::timestamptz - i * interval '1 s' + interval '5 s'
FROM generate_series(1, 20000) AS i
"""
INDEXES = {
    "list_jobs_by_state": "runner_jobs_state_listed",
    "list_jobs_by_state_task": "runner_jobs_state_task_listed",
    "list_jobs_in_queue": "runner_jobs_queue_listed",
}
# Every job, and one task's: one range per state runner knows, and one of the others.
MERGED = {
    "list_jobs": [*["runner_jobs_state_listed"] * len(State), "runner_jobs_other_states_listed"],
    "list_jobs_by_task": [
        *["runner_jobs_state_task_listed"] * len(State),
        "runner_jobs_other_states_listed",
    ],
}


def reads(name: str) -> list[tuple[str, str | None]]:
    """The plan a page query of this shape must have: one index range read in order, or
    for a merged one, its ranges merged in order, each read only as far as needed."""
    if name not in MERGED:
        return [("Limit", None), ("Index Scan", INDEXES[name])]
    parts = [node for index in MERGED[name] for node in (("Limit", None), ("Index Scan", index))]
    return [("Limit", None), ("Merge Append", None), *parts]


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def read_plan(text: str) -> tuple[list[tuple[str, str | None]], float]:
    """The plan's (node type, index) from the top down, and its estimated cost."""
    plan = json.loads(text)[0]["Plan"]
    nodes = [(node["Node Type"], node.get("Index Name")) for node in plan_nodes(plan)]
    return nodes, plan["Total Cost"]


SHAPES: list[dict[str, Any]] = [
    {"state": None, "task": None},
    {"state": "failed", "task": None},
    {"state": None, "task": "task_3"},
    {"state": "failed", "task": "task_3"},
]


async def test_every_query_shape_reads_one_index_range_in_order(pg: PgStore) -> None:
    """On 20,000 analysed rows, each filter shape, first page or deep with a cursor
    and a time window, plans as a Limit over one Index Scan of its own index, or over
    a Merge Append of one such range per state: no Sort, no Seq Scan, no bitmap.

    A statement asyncpg prepared may switch to the generic plan (made without the
    values) after five runs, but Postgres does so only when that plan costs no more
    than the plans for the values. The generic plan is an index scan in order too;
    where it reads another index (on a small table, the all-jobs one with a filter
    on state), it must cost more than the plan for the values, so it never runs.
    LIMIT $4 keeps it so as tables grow: without the value, Postgres costs a
    generic plan for a tenth of the rows, the plans for the values for one page."""
    await pg.pool.execute(FILL, T0)
    await pg.pool.execute("ANALYZE runner_jobs")
    cursor = (await list_jobs(pg.pool, limit=1000))[1]
    first = {"since_ms": None, "until_ms": None, "after": None}
    deep = {"since_ms": ms(T0 - timedelta(hours=5)), "until_ms": ms(T0), "after": cursor}
    async with pg.pool.acquire() as conn:
        generic_plans = conn.get_server_version() >= (16,)  # EXPLAIN (GENERIC_PLAN): 16+
        if generic_plans:
            await conn.execute(GENERIC_PLAN)
        for shape in [*SHAPES, {"state": None, "task": None, "queue": "mail"}]:
            for window in (first, deep):
                name, sql, args = page_query(**shape, **window, limit=50)
                if "queue" in shape:
                    name = "list_jobs_in_queue"  # its filter, on its own index
                custom = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
                nodes, custom_cost = read_plan(custom)
                assert nodes == reads(name), name
                if not generic_plans:
                    continue
                generic = await conn.fetchval("SELECT pg_temp.generic_plan($1)", sql)
                nodes, generic_cost = read_plan(generic)
                assert [node for node, _ in nodes] == [node for node, _ in reads(name)], name
                assert nodes == reads(name) or generic_cost > custom_cost, name


async def test_jobs_lists_from_postgres_when_redis_is_down(
    pg: PgStore, tmp_path: Path, database_url: str, prefix: str
) -> None:
    """`runner jobs` with Redis out of reach: the page comes from PostgreSQL, with each
    state as recorded, and the text and the JSON both say live states are unavailable."""
    await insert(pg, [("kept", "echo", "succeeded", 1, T0 - MS, T0 - MS)])
    config = daemon_config_file(
        tmp_path / "runner.toml", "redis://127.0.0.1:9/0", database_url, prefix
    )
    text = await asyncio.to_thread(cli, "jobs", config=config)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[1].split()[:4] == ["kept", "echo", "default", "succeeded"]
    assert text.stdout.splitlines()[-1].startswith("note: Redis is unreachable: live states")
    as_json = json.loads((await asyncio.to_thread(cli, "jobs", "--json", config=config)).stdout)
    assert [job["id"] for job in as_json["jobs"]] == ["kept"]
    assert as_json["live_states"] is False and "unreachable" in as_json["note"]
