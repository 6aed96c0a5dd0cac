"""Listing jobs at a million rows: `runner jobs --state scheduled --limit 50` and its
next page, through the code the client and the CLI run.

Fills runner_jobs of a database of its own with ROWS jobs in one INSERT ... SELECT
(30 days of jobs in creation order, as the recorder writes them; 70% succeeded,
15% scheduled, the rest failed, retrying, paused, running or cancelled; 20 tasks,
a few busy ones; 0.5% with their first event unrecorded), with the indexes dropped
during the fill and rebuilt after, then VACUUM ANALYZE. Times each page shape over
RUNS runs (after a warm-up) with the page's live states read from Redis, prints
p50 and p99, the EXPLAIN (ANALYZE, BUFFERS) of the page queries, and the whole
`runner jobs` command once, from process start to exit.

    .venv/bin/python -m bench.listing            # own embedded servers
    .venv/bin/python -m bench.listing --rows 200000 --runs 50
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.runner_daemon import REPO, write_config
from bench.stats import percentile
from runner.client.listing import ListQuery, list_jobs_live
from runner.servers.embedded import EmbeddedServers
from runner.store import redis_client
from runner.store.postgres.listing import Keyset, encode_cursor, page_query
from runner.store.postgres.migrate import migrate
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore

ROWS = 1_000_000
RUNS = 200
WARM_UP = 10
TARGET_MS = 100.0  # both pages answer within this at p99
DATABASE = "runner_listing"

FILL = """
INSERT INTO runner_jobs (id, task, state, attempt, seq, args, kwargs, due_at, created_at,
                         updated_at, daemon)
SELECT md5(i::text),
       'task_' || floor(r2 * r2 * 20)::int,
       CASE WHEN r1 < 0.70 THEN 'succeeded' WHEN r1 < 0.75 THEN 'failed'
            WHEN r1 < 0.77 THEN 'cancelled' WHEN r1 < 0.92 THEN 'scheduled'
            WHEN r1 < 0.95 THEN 'retrying' WHEN r1 < 0.97 THEN 'running' ELSE 'paused' END,
       CASE WHEN r1 >= 0.77 AND r1 < 0.92 THEN 0 ELSE 1 END,
       3, '[1, "two"]', '{}',
       made + interval '1 minute' * floor(r3 * 600),
       CASE WHEN r3 < 0.005 THEN NULL ELSE made END,
       made + interval '1 second' * r3 * 10,
       'bench:1:abcd'
FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3,
             now() - interval '30 days' * (1 - i::float8 / $1) AS made
      FROM generate_series(1, $1) AS i) AS s
"""
SECONDARY_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'runner_jobs' AND indexname <> 'runner_jobs_pkey'
"""


@dataclass(frozen=True)
class Timing:
    runs: int
    p50_ms: float
    p99_ms: float
    rows: int  # on the page

    @classmethod
    def of(cls, samples: list[float], rows: int) -> Timing:
        ordered = sorted(samples)
        return cls(
            len(ordered), round(percentile(ordered, 50), 3), round(percentile(ordered, 99), 3), rows
        )


@dataclass
class ListingFigures:
    rows: int
    fill_s: float = 0.0
    index_s: float = 0.0
    pages: dict[str, Timing] = field(default_factory=dict)
    cli_ms: dict[str, float] = field(default_factory=dict)
    cli_note: str = ""
    plans: dict[str, str] = field(default_factory=dict)

    def targets(self) -> dict[str, bool]:
        return {
            f"runner jobs --state scheduled (and next page) p99 < {TARGET_MS:g} ms "
            f"at {self.rows:,} jobs": all(
                self.pages[name].p99_ms < TARGET_MS for name in ("first page", "next page")
            )
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fill_s": round(self.fill_s, 1),
            "index_s": round(self.index_s, 1),
            "pages": {name: asdict(t) for name, t in self.pages.items()},
            "cli_ms": self.cli_ms,
            "targets": self.targets(),
        }


async def fill(conn: Any, rows: int, figures: ListingFigures) -> None:
    """ROWS jobs in one statement; the indexes are rebuilt once afterwards, which is
    several times faster than keeping six of them up to date row by row."""
    indexes = await conn.fetch(SECONDARY_INDEXES)
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    started = time.perf_counter()
    await conn.execute("SELECT setseed(0.42)")
    await conn.execute(FILL, rows)
    figures.fill_s = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '256MB'")
    for index in indexes:
        await conn.execute(index["indexdef"])
    await conn.execute("VACUUM ANALYZE runner_jobs")
    figures.index_s = time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(WARM_UP):
        result = await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result


async def deep_cursor(pool: Any, depth: int) -> str:
    """The cursor of the row `depth` rows into the scheduled jobs (found with OFFSET,
    once, only to set the benchmark up)."""
    row = await pool.fetchrow(
        "SELECT COALESCE(created_at, updated_at) AS at, id FROM runner_jobs "
        "WHERE state = 'scheduled' "
        "ORDER BY COALESCE(created_at, updated_at) DESC, id DESC OFFSET $1 LIMIT 1",
        depth,
    )
    return encode_cursor(Keyset(row["at"], row["id"]))


async def time_pages(
    pg: PgStore, live: RedisStore, runs: int, figures: ListingFigures
) -> dict[str, ListQuery]:
    """Each page as Client.list reads it: the Postgres page, then its live states."""

    page = functools.partial(list_jobs_live, pg, live)
    depth = figures.rows // 10  # two thirds into the scheduled jobs
    first = ListQuery(state="scheduled", limit=50)
    first_page = await page(first)
    queries = {
        "first page": first,
        "next page": ListQuery(state="scheduled", limit=50, after=first_page.next_cursor),
        f"page {depth:,} rows deep": ListQuery(
            state="scheduled", limit=50, after=await deep_cursor(pg.pool, depth)
        ),
        "every job": ListQuery(limit=50),
        "one task": ListQuery(task="task_7", limit=50),
        "state and task": ListQuery(state="failed", task="task_7", limit=50),
        "state, 1h window": ListQuery(
            state="scheduled", since_ms=int((time.time() - 3600) * 1000), limit=50
        ),
    }
    for name, q in queries.items():
        samples, result = await timed(functools.partial(page, q), runs)
        figures.pages[name] = Timing.of(samples, len(result.jobs))
    return queries


async def explain(conn: Any, q: ListQuery) -> str:
    _, sql, args = page_query(
        state=q.state, task=q.task, since_ms=q.since_ms, until_ms=q.until_ms,
        limit=q.limit, after=q.after, queue=q.queue,
    )  # fmt: skip
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    return "\n".join(row[0] for row in rows)


def run_cli(config: Path, *words: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """`runner --config CONFIG WORDS...` in a new process, and its time from start to exit."""
    command = [sys.executable, "-m", "runner", "--config", str(config), *words]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    return (time.perf_counter() - started) * 1000, done


def time_cli(config: Path, figures: ListingFigures) -> None:
    """The whole command once (interpreter start, imports, connections, page, exit),
    then its next page with the cursor it printed; `runner --version` beside them is
    what starting Python and importing runner costs."""
    page = ("jobs", "--state", "scheduled", "--limit", "50", "--json")
    first_ms, done = run_cli(config, *page)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        figures.cli_note = f"`runner jobs` exited {done.returncode}: {last}"
        return
    next_ms, done = run_cli(config, *page, "--after", orjson.loads(done.stdout)["next_cursor"])
    if done.returncode != 0:
        figures.cli_note = f"`runner jobs --after` exited {done.returncode}: {done.stderr}"
        return
    start_ms, _ = run_cli(config, "--version")
    figures.cli_ms = {
        "first page": round(first_ms, 1),
        "next page": round(next_ms, 1),
        "runner --version": round(start_ms, 1),
    }


async def create_database(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()


async def measure_async(
    servers: EmbeddedServers, folder: Path, rows: int, runs: int
) -> ListingFigures:
    figures = ListingFigures(rows)
    await create_database(servers.postgres_url("postgres"))
    database_url = servers.postgres_url(DATABASE)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await fill(conn, rows, figures)
    finally:
        await conn.close()
    prefix = f"bench-listing-{secrets.token_hex(3)}"
    pg = await PgStore.connect(database_url, max_size=2)  # as a Client connects
    redis = redis_client(servers.redis_url)
    try:
        queries = await time_pages(pg, RedisStore(redis, Keys(prefix)), runs, figures)
        async with pg.pool.acquire() as conn:
            for name in ("first page", "next page"):
                figures.plans[name] = await explain(conn, queries[name])
    finally:
        await pg.close()
        await redis.aclose()
    config = write_config(
        folder / "listing.toml", servers.redis_url, database_url, prefix, folder / "listing.log"
    )
    time_cli(config, figures)
    return figures


def measure(
    servers: EmbeddedServers, folder: Path, rows: int = ROWS, runs: int = RUNS
) -> ListingFigures:
    """The listing figures on running servers (a database of their own, dropped after)."""
    print(f"measuring listing ({rows:,} jobs in runner_jobs) ...", flush=True)
    try:
        return asyncio.run(measure_async(servers, folder, rows, runs))
    finally:
        asyncio.run(_drop_database(servers.postgres_url("postgres")))


async def _drop_database(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


def render(f: ListingFigures, plans: bool = True) -> str:
    runs = next(iter(f.pages.values())).runs
    lines = [
        f"listing: {f.rows:,} jobs in runner_jobs (filled in {f.fill_s:.1f} s, "
        f"indexed and analysed in {f.index_s:.1f} s); limit 50, live states from Redis",
        f"  {'':<26}{'p50':>10}{'p99':>10}{'rows':>6}   ({runs} runs each)",
    ]
    for name, t in f.pages.items():
        lines.append(f"  {name:<26}{t.p50_ms:>7.2f} ms{t.p99_ms:>7.2f} ms{t.rows:>6}")
    if f.cli_ms:
        lines.append(
            "  runner jobs --state scheduled --limit 50 --json, process start to exit: "
            f"{f.cli_ms['first page']:.0f} ms; with --after: {f.cli_ms['next page']:.0f} ms "
            f"(runner --version: {f.cli_ms['runner --version']:.0f} ms)"
        )
    else:
        lines.append(f"  runner jobs end to end: not measured: {f.cli_note}")
    if plans:
        for name, plan in f.plans.items():
            lines += ["", f"query plan, {name}:", *(f"  {line}" for line in plan.splitlines())]
    lines += ["", "targets:"]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in f.targets().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help="jobs in runner_jobs")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs of each page")
    parser.add_argument("--keep", action="store_true", help="keep the folder of logs and data")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-listing-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    servers = EmbeddedServers(folder / "servers", durable=False)
    try:
        servers.start_redis()
        servers.start_postgres()
        figures = measure(servers, folder, args.rows, args.runs)
    finally:
        servers.stop()
        if args.keep:
            print(f"logs and data kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
