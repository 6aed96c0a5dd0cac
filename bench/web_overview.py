"""The dashboard's overview at a million jobs: GET /api/status and GET /api/throughput,
through the real app and HTTP, as the overview page calls them every few seconds.

Fills runner_jobs with ROWS jobs (bench.listing's fill: 30 days of jobs, 70%
succeeded) and runner_job_events with two events a job (claimed with its lateness,
then finished) at the job's times, then VACUUM ANALYZE; times each route over RUNS
runs after a warm-up and prints p50 and p99 with the plans of both queries.

    .venv/bin/python -m bench.web_overview
    .venv/bin/python -m bench.web_overview --rows 200000 --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from bench.listing import DATABASE, ListingFigures, _drop_database, create_database, fill
from bench.stats import percentile
from runner.config.settings import Settings
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.migrate import migrate
from runner.store.postgres.queries import query
from runner.web.app import make_app

ROWS = 1_000_000
RUNS = 30
WARM_UP = 3
TARGET_MS = 200.0  # the overview page's budget, both calls together
EVENTS = """
INSERT INTO runner_job_events (job_id, seq, from_state, to_state, at, daemon, attempt, detail)
SELECT id, 2, 'scheduled', 'running', updated_at - interval '50 ms', daemon, 1,
       jsonb_build_object('late_ms', (random() * 40)::int)
FROM runner_jobs
UNION ALL
SELECT id, 3, 'running', state, updated_at, daemon, 1, '{}'
FROM runner_jobs WHERE state IN ('succeeded', 'failed')
"""


async def fill_events(database_url: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        await conn.execute("DROP INDEX runner_job_events_at")
        await conn.execute(EVENTS)
        await conn.execute(  # as migration 012 makes it
            "CREATE INDEX runner_job_events_at ON runner_job_events USING brin (at)"
            " WITH (autosummarize = on)"
        )
        await conn.execute("VACUUM ANALYZE runner_job_events")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def timed(client: TestClient[Any, Any], path: str, runs: int) -> tuple[float, float]:
    for _ in range(WARM_UP):
        assert (await client.get(path)).status == 200
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(path)
        await response.read()
        samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    return percentile(ordered, 50), percentile(ordered, 99)


async def plans(database_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        window = datetime.now(UTC) - timedelta(minutes=60)
        explain = "EXPLAIN (ANALYZE, BUFFERS) "
        return {
            "state_task_counts": "\n".join(
                r[0] for r in await conn.fetch(explain + query("state_task_counts"))
            ),
            "throughput": "\n".join(
                r[0] for r in await conn.fetch(explain + query("throughput"), window)
            ),
        }
    finally:
        await conn.close()


async def measure(servers: EmbeddedServers, rows: int, runs: int) -> dict[str, Any]:
    await create_database(servers.postgres_url("postgres"))
    database_url = servers.postgres_url(DATABASE)
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await fill(conn, rows, ListingFigures(rows))
    finally:
        await conn.close()
    events_s = await fill_events(database_url)
    settings = replace(
        Settings(), redis_url=servers.redis_url, database_url=database_url, key_prefix="bench-web"
    )
    client: TestClient[Any, Any] = TestClient(TestServer(make_app(settings)))
    await client.start_server()
    try:
        figures = {
            path: await timed(client, path, runs)
            for path in ("/api/status", "/api/throughput?minutes=60")
        }
    finally:
        await client.close()
    return {"events_fill_s": events_s, "routes": figures, "plans": await plans(database_url)}


async def phase(servers: EmbeddedServers, rows: int, runs: int = RUNS) -> dict[str, Any]:
    """The measurement on servers already running, its database dropped after."""
    try:
        return await measure(servers, rows, runs)
    finally:
        await _drop_database(servers.postgres_url("postgres"))


def render(result: dict[str, Any], rows: int) -> tuple[str, bool]:
    """The plans and timings as text, and whether the overview met its budget."""
    lines = [f"{name}:\n{plan}\n" for name, plan in result["plans"].items()]
    total = 0.0
    for path, (p50, p99) in result["routes"].items():
        lines.append(f"GET {path:<28} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({rows:,} jobs)")
        total += p50
    verdict = "within" if total < TARGET_MS else "over"
    lines.append(f"overview (both calls, p50): {total:.1f} ms, {verdict} {TARGET_MS:g} ms")
    return "\n".join(lines), total < TARGET_MS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web_overview", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help="jobs in runner_jobs")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed requests per route")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-web-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    servers = EmbeddedServers(folder / "servers", durable=False)
    try:
        servers.start_redis()
        servers.start_postgres()
        result = asyncio.run(phase(servers, args.rows, args.runs))
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)
    text, ok = render(result, args.rows)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
