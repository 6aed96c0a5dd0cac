"""runner's side of the benchmark: enqueue through the public Client, run the daemon.

Jobs are enqueued with `Client.new_job` + `Client.enqueue_many` (one pipeline
per chunk), as an application would. The figures are read back from what the
daemon leaves behind: its log for timing, Postgres for the recorded history,
and the lateness bodies' own records (bench/late.py, the body every system
runs), so nothing in runner is instrumented.
"""

from __future__ import annotations

import asyncio
import resource
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

from bench import late
from bench.machine import BusySampler
from bench.plan import Plan
from bench.runner_daemon import RunnerDaemon, find_line, log_time, read_log, write_config
from bench.servers import own_database
from bench.stats import Lateness, Throughput
from runner import Client
from runner.config.settings import Settings, load_settings
from runner.jobs import NewJob

CHUNK = 1000
TRANSITIONS_PER_JOB = 3  # scheduled, running, succeeded


@dataclass(frozen=True)
class Setup:
    """Where runner's side works: the shared servers and a folder for its files."""

    redis_url: str
    database_url: str
    folder: Path
    own_databases: bool = False  # each phase on a new database (bench/servers.py)

    def config(self, phase: str) -> tuple[Path, Path, Settings]:
        """A config with a fresh key prefix (and, with `own_databases`, a database of
        its own), its log file, and the settings it loads to."""
        log_file = self.folder / f"runner-{phase}.log"
        database_url = (
            own_database(self.database_url, phase, migrate=True) if self.own_databases else None
        )
        path = write_config(
            self.folder / f"runner-{phase}.toml", self.redis_url,
            database_url or self.database_url, f"bench-{phase}-{secrets.token_hex(3)}", log_file,
        )  # fmt: skip
        return path, log_file, load_settings(path, env={})


async def _enqueue(settings: Settings, jobs: list[NewJob]) -> float:
    started = time.perf_counter()
    async with await Client.connect(settings) as client:
        for i in range(0, len(jobs), CHUNK):
            await client.enqueue_many(jobs[i : i + CHUNK])
    return time.perf_counter() - started


async def _new_jobs(settings: Settings, count: int) -> list[NewJob]:
    async with await Client.connect(settings) as client:
        return [client.new_job("noop") for _ in range(count)]


async def _fetch(database_url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _count_events(database_url: str, ids: list[str]) -> int:
    rows = asyncio.run(
        _fetch(database_url, "SELECT count(*) FROM runner_job_events WHERE job_id = ANY($1)", ids)
    )
    return int(rows[0][0])


def throughput(setup: Setup, plan: Plan, wrapper: list[str]) -> Throughput:
    """Enqueue `plan.jobs` no-op jobs, then time one `run --drain` daemon emptying the queue.

    --drain exits only once every transition is in Postgres, so the span from
    "daemon ready" to "daemon stopped" includes recording the whole history.
    """
    config, log_file, settings = setup.config("throughput")
    jobs = asyncio.run(_new_jobs(settings, plan.jobs))
    enqueue_s = asyncio.run(_enqueue(settings, jobs))
    output = setup.folder / "runner-throughput.out"
    redis_cpu_before = redis_cpu_s(setup.redis_url)
    daemon_cpu_before = _children_cpu_s()
    with (
        BusySampler() as machine,
        RunnerDaemon(config, log_file, output, drain=True, wrapper=wrapper) as daemon,
    ):
        code = daemon.wait(plan.timeout_s)
    redis_cpu = redis_cpu_s(setup.redis_url) - redis_cpu_before
    daemon_cpu = _children_cpu_s() - daemon_cpu_before
    if code != 0:
        raise RuntimeError(f"runner daemon exited with {code}; see {output}")
    lines = read_log(log_file)
    ready = log_time(find_line(lines, "daemon ready"))
    stopped = log_time(find_line(lines, "daemon stopped"))
    _check_complete(lines, _database_url(settings), [job.id for job in jobs])
    busy = machine.busy_between(ready, stopped)
    return Throughput(
        jobs=plan.jobs, seconds=stopped - ready, enqueue_seconds=round(enqueue_s, 3),
        redis_cpu_s=round(redis_cpu, 3), machine_busy=None if busy is None else round(busy, 3),
        daemon_cpu_s=round(daemon_cpu, 3),
    )  # fmt: skip


def _database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise RuntimeError("the bench config names no database")
    return settings.database_url


def _children_cpu_s() -> float:
    """CPU seconds of the child processes this one has waited for: the daemon's whole
    life, its start-up included, once it exited."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def redis_cpu_s(url: str) -> float:
    """The CPU seconds the Redis server has spent so far (INFO cpu, its own and its
    system time): all runner's daemons ask of it happens on one thread, so a job's
    share of it says how many jobs a second Redis could serve at most."""
    client = redis.Redis.from_url(url)
    try:
        cpu = client.info("cpu")
    finally:
        client.close()
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _check_complete(lines: list[dict[str, Any]], database_url: str, ids: list[str]) -> None:
    """Every job logged its start and success, and every transition reached Postgres."""
    for event in ("job started", "job succeeded"):
        logged = sum(1 for line in lines if line.get("event") == event)
        if logged != len(ids):
            raise RuntimeError(f"runner logged {event!r} {logged} times for {len(ids)} jobs")
    events = _count_events(database_url, ids)
    if events != TRANSITIONS_PER_JOB * len(ids):
        raise RuntimeError(
            f"runner_job_events holds {events} rows for {len(ids)} jobs, "
            f"expected {TRANSITIONS_PER_JOB * len(ids)}"
        )


@dataclass(frozen=True)
class LatenessRun:
    """The tasks' own lateness figures, plus runner's claim-time late_ms for comparison."""

    started: Lateness
    claimed: Lateness


async def _delayed_jobs(settings: Settings, plan: Plan, path: Path) -> list[NewJob]:
    async with await Client.connect(settings) as client:
        jobs = []
        for delay in plan.delays():
            # The exact time asked for, read before new_job reads runner's clock:
            # runner's due time (whole ms, rounded up) is never earlier than it.
            due = time.time() + delay
            jobs.append(client.new_job("lateness", [due, str(path)], delay=delay))
        return jobs


async def _wait_succeeded(database_url: str, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count(*) FROM runner_jobs WHERE id = ANY($1) AND state = 'succeeded'"
    conn = await asyncpg.connect(database_url)
    try:
        while (done := await conn.fetchval(sql, ids)) < len(ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {len(ids)} lateness jobs succeeded")
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


def _claim_lateness(database_url: str, ids: list[str]) -> list[float]:
    rows = asyncio.run(
        _fetch(
            database_url,
            "SELECT (detail->>'late_ms')::float8 FROM runner_job_events"
            " WHERE job_id = ANY($1) AND to_state = 'running'",
            ids,
        )
    )
    return [float(row[0]) for row in rows]


def lateness(setup: Setup, plan: Plan) -> LatenessRun:
    """Jobs due at random over `plan.spread_s`, on a daemon running as in production."""
    config, log_file, settings = setup.config("lateness")
    output = setup.folder / "runner-lateness.out"
    bodies = setup.folder / "late-runner.txt"
    with RunnerDaemon(config, log_file, output) as daemon:
        daemon.wait_for_line("daemon ready", plan.timeout_s)
        jobs = asyncio.run(_delayed_jobs(settings, plan, bodies))
        asyncio.run(_enqueue(settings, jobs))
        ids = [job.id for job in jobs]
        wait_s = plan.offset_s + plan.spread_s + plan.timeout_s
        # As for the peers: the bodies' own file says when all have run (a query of
        # every id a quarter second would load the machine while they start).
        late.wait_recorded(str(bodies), plan.late_jobs, wait_s)
        asyncio.run(_wait_succeeded(_database_url(settings), ids, plan.timeout_s))
        code = daemon.stop(plan.timeout_s)
    if code != 0:
        raise RuntimeError(f"runner daemon exited with {code} after SIGTERM; see {output}")
    started = late.samples_ms(str(bodies))
    claimed = _claim_lateness(_database_url(settings), ids)
    if len(started) != plan.late_jobs:
        raise RuntimeError(f"{len(started)} lateness results for {plan.late_jobs} jobs")
    return LatenessRun(Lateness.from_samples(started), Lateness.from_samples(claimed))
