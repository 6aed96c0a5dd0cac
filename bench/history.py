"""Bounded history: the recorder's write rate on an empty runner_job_events and on one
already holding ROWS events, and the time to drop one day of history.

Two databases of their own on the same server, both migrated: one left empty, the
other filled with ROWS events over the 30 past days (a partition a day, as the
keeper makes them; three events per job, ROWS / 3 jobs in runner_jobs to match) in
two INSERT ... SELECT generate_series, then VACUUM ANALYZE and a CHECKPOINT. Writes go through
PgStore.write_events, the recorder's own path, in batches of BATCH_EVENTS events as
a recorder flushes them: each batch enqueues new jobs and runs and finishes the
previous batch's, so runner_jobs sees inserts and updates. The two databases' batches
alternate one by one, so that other work on the machine weighs on both alike; each
side's rate is its median over ROUNDS rounds. Then the oldest day is dropped, as the keeper
does it, and timed; and that day's finished jobs are removed from runner_jobs.

    .venv/bin/python -m bench.history              # own embedded servers
    .venv/bin/python -m bench.history --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.servers import private_servers
from runner.jobs import Event
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.history import remove_finished_jobs
from runner.store.postgres.migrate import migrate
from runner.store.postgres.partitions import (
    create_partitions,
    day_partition,
    drop_partitions,
    utc_day,
)
from runner.store.postgres.store import PgStore, events_json

ROWS = 10_000_000
DAYS = 30
BATCH_EVENTS = 2_000
BATCHES = 40  # per round and database
ROUNDS = 5
WARM_UP = 5  # batches per database before the rounds
RATE_TARGET = 0.90  # the filled table's rate, as a share of the empty one's
# The write path's own ceiling: twice the 33,500 events/s it reached on this machine
# before migration 012 (the empty table's rate, in these 2,000-event batches).
CEILING_BEFORE = 33_500
CEILING_TARGET = 2 * CEILING_BEFORE
DROP_TARGET_S = 1.0
DATABASES = ("runner_history_empty", "runner_history_full")

# Three events per job over DAYS whole UTC days before today, in creation order.
FILL_EVENTS = """
INSERT INTO runner_job_events (job_id, seq, from_state, to_state, at, daemon, attempt, detail)
SELECT md5(j::text), s.seq, s.from_state, s.to_state,
       $2::timestamptz + ($3::timestamptz - $2::timestamptz) * ((j - 1)::float8 / $1)
           + interval '1 millisecond' * s.seq,
       CASE WHEN s.seq = 1 THEN 'client' ELSE 'bench:1:abcd' END,
       CASE WHEN s.seq = 1 THEN 0 ELSE 1 END,
       CASE WHEN s.seq = 1 THEN '{"task": "noop", "args": [], "kwargs": {}}'::jsonb
            WHEN s.seq = 3 THEN '{"result": null}'::jsonb ELSE '{}'::jsonb END
FROM generate_series(1, $1) AS j,
     (VALUES (1, NULL, 'scheduled'), (2, 'scheduled', 'running'), (3, 'running', 'succeeded'))
         AS s (seq, from_state, to_state)
"""
FILL_JOBS = """
INSERT INTO runner_jobs (id, task, state, attempt, seq, args, kwargs, created_at, updated_at,
                         daemon)
SELECT md5(j::text), 'noop', 'succeeded', 1, 3, '[]', '{}', made,
       made + interval '3 milliseconds', 'bench:1:abcd'
FROM (SELECT j, $2::timestamptz + ($3::timestamptz - $2::timestamptz) * ((j - 1)::float8 / $1)
             AS made
      FROM generate_series(1, $1) AS j) AS s
"""
SECONDARY_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'runner_jobs' AND indexname <> 'runner_jobs_pkey'
"""


@dataclass
class HistoryFigures:
    rows: int
    fill_s: float = 0.0
    rounds: dict[str, list[float]] = field(default_factory=dict)  # events/s per round
    drop_s: float = 0.0
    dropped_events: int = 0
    remove_s: float = 0.0
    removed_jobs: int = 0

    def rate(self, side: str) -> float:
        return statistics.median(self.rounds[side])

    def ratio(self) -> float:
        return self.rate("full") / self.rate("empty")

    def targets(self) -> dict[str, bool]:
        return {
            f"recorder writes >= {CEILING_TARGET:,} events/s on the empty table (2x the "
            f"{CEILING_BEFORE:,} before)": self.rate("empty") >= CEILING_TARGET,
            f"recorder writes at {self.rows:,} events >= {RATE_TARGET:.0%} of the empty "
            "table's rate": self.ratio() >= RATE_TARGET,
            f"dropping one day of history < {DROP_TARGET_S:g} s": self.drop_s < DROP_TARGET_S,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fill_s": round(self.fill_s, 1),
            "batch_events": BATCH_EVENTS,
            "events_per_s": {side: round(self.rate(side)) for side in self.rounds},
            "rounds_events_per_s": {s: [round(r) for r in v] for s, v in self.rounds.items()},
            "full_over_empty": round(self.ratio(), 3),
            "drop_one_day_s": round(self.drop_s, 3),
            "dropped_events": self.dropped_events,
            "remove_one_day_of_jobs_s": round(self.remove_s, 2),
            "removed_jobs": self.removed_jobs,
            "targets": self.targets(),
        }


def batches(prefix: str, count: int) -> list[list[str]]:
    """`count` batches as the recorder passes them (one stream entry per Lua call): each
    enqueues new jobs, one entry each, and claims and finishes the previous batch's
    jobs, in entries of a claim's and a finish's size."""
    jobs = BATCH_EVENTS // 3
    out: list[list[str]] = []
    now_ms = int(time.time() * 1000)
    for b in range(count + 1):
        ids = [f"{prefix}-{b}-{n}" for n in range(jobs)]
        entries = [
            events_json([Event(i, 1, "", "scheduled", now_ms, "client", 0, '{"task":"noop"}')])
            for i in ids
        ]
        if out:
            ran = [f"{prefix}-{b - 1}-{n}" for n in range(jobs)]
            for chunk in (ran[: jobs // 2], ran[jobs // 2 :]):
                entries.append(
                    events_json(
                        [Event(i, 2, "scheduled", "running", now_ms, "d", 1, "{}") for i in chunk]
                    )
                )
                entries.append(
                    events_json(
                        [Event(i, 3, "running", "succeeded", now_ms, "d", 1, "{}") for i in chunk]
                    )
                )
        out.append(entries)
    return out[1:]


def events_in(work: list[list[str]]) -> int:
    return sum(entry.count(',["') + 1 for batch in work for entry in batch)


async def write_rates(stores: dict[str, PgStore], prefix: str, count: int) -> dict[str, float]:
    """Events/s of each store over `count` batches, its batches interleaved with the
    other's one by one (the first side alternating), so that both meet the same load."""
    work = {side: batches(f"{prefix}-{side}", count) for side in stores}
    seconds = dict.fromkeys(stores, 0.0)
    sides = list(stores)
    for n in range(count):
        for side in sides if n % 2 == 0 else sides[::-1]:
            started = time.perf_counter()
            await stores[side].write_events(work[side][n])
            seconds[side] += time.perf_counter() - started
    return {side: events_in(work[side]) / seconds[side] for side in stores}


async def fill(conn: Any, rows: int, today: datetime, figures: HistoryFigures) -> None:
    """ROWS events over the DAYS days before today, each day in its own partition, and
    the jobs they belong to (runner_jobs's secondary indexes rebuilt once after)."""
    start = today - timedelta(days=DAYS)
    await create_partitions(conn, [(start + timedelta(days=d)).date() for d in range(DAYS)])
    started = time.perf_counter()
    jobs = rows // 3
    await conn.execute(FILL_EVENTS, jobs, start, today)
    indexes = await conn.fetch(SECONDARY_INDEXES)
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    await conn.execute(FILL_JOBS, jobs, start, today)
    await conn.execute("SET maintenance_work_mem = '256MB'")
    for index in indexes:
        await conn.execute(index["indexdef"])
    await conn.execute("VACUUM ANALYZE runner_jobs")
    await conn.execute("VACUUM ANALYZE runner_job_events")
    # The fill's dirty pages are written now, not by the checkpointer during the rounds.
    await conn.execute("CHECKPOINT")
    figures.fill_s = time.perf_counter() - started


async def drop_oldest_day(conn: Any, today: datetime, figures: HistoryFigures) -> None:
    """The keeper's steps for a keep that has just passed the oldest day: the day's
    partition dropped (timed: the target), then its finished jobs removed."""
    oldest = today - timedelta(days=DAYS)
    name, _, upper = day_partition(oldest.date())
    figures.dropped_events = await conn.fetchval(f"SELECT count(*) FROM {name}")
    started = time.perf_counter()
    dropped = await drop_partitions(conn, upper)
    figures.drop_s = time.perf_counter() - started
    assert dropped == [name], dropped
    started = time.perf_counter()
    figures.removed_jobs = await remove_finished_jobs(conn, upper)
    figures.remove_s = time.perf_counter() - started


async def measure_async(admin_url: str, url_of: Any, rows: int) -> HistoryFigures:
    figures = HistoryFigures(rows)
    admin = await asyncpg.connect(admin_url)
    try:
        for name in DATABASES:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    day = utc_day(time.time())
    today = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for name in DATABASES:
        conn = await asyncpg.connect(url_of(name))
        try:
            await migrate(conn)
            if name.endswith("full"):
                print(f"  filling {rows:,} events ...", flush=True)
                await fill(conn, rows, today, figures)
        finally:
            await conn.close()
    stores = {side: await PgStore.connect(url_of(f"runner_history_{side}"), max_size=1)
              for side in ("empty", "full")}  # fmt: skip
    try:
        await write_rates(stores, "warm", WARM_UP)
        for r in range(ROUNDS):
            for side, rate in (await write_rates(stores, f"r{r}", BATCHES)).items():
                figures.rounds.setdefault(side, []).append(rate)
        async with stores["full"].pool.acquire() as conn:
            await drop_oldest_day(conn, today, figures)
    finally:
        for pg in stores.values():
            await pg.close()
    return figures


async def _drop_databases(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        for name in DATABASES:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def measure(servers: EmbeddedServers, rows: int = ROWS) -> HistoryFigures:
    """The history figures on a running PostgreSQL (databases of their own, dropped after)."""
    print(f"measuring history (write rate at {rows:,} events, dropping a day) ...", flush=True)
    admin_url = servers.postgres_url("postgres")
    try:
        return asyncio.run(measure_async(admin_url, servers.postgres_url, rows))
    finally:
        asyncio.run(_drop_databases(admin_url))


def render(f: HistoryFigures) -> str:
    rounds = {side: ", ".join(f"{r:,.0f}" for r in v) for side, v in f.rounds.items()}
    lines = [
        f"history: recorder writes (PgStore.write_events, {BATCH_EVENTS:,}-event batches, "
        f"{BATCHES} a round, interleaved), median of {ROUNDS} rounds",
        f"  empty runner_job_events:   {f.rate('empty'):>9,.0f} events/s  ({rounds['empty']})",
        f"  with {f.rows:,} events: {f.rate('full'):>9,.0f} events/s  ({rounds['full']})"
        f"  = {f.ratio():.0%} of empty (filled in {f.fill_s:.0f} s, {DAYS} daily partitions)",
        f"  dropping one day ({f.dropped_events:,} events): {f.drop_s * 1000:.0f} ms; "
        f"removing its {f.removed_jobs:,} finished jobs from runner_jobs: {f.remove_s:.1f} s",
        "",
        "targets:",
    ]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in f.targets().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help="events in the filled table")
    args = parser.parse_args(argv)
    with private_servers("history", redis=False) as (servers, _):
        figures = measure(servers, args.rows)
    print()
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
