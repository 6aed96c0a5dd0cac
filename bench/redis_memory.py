"""`python -m bench.redis_memory`: what jobs cost in Redis memory.

Two figures, each read as the growth of the server's used_memory while a daemon
runs (so its recorder drains the event stream, as in production):

- near-term: 100,000 no-op jobs due in 59 minutes (inside the default one-hour
  park horizon: a job due in an hour or later waits in PostgreSQL); bytes per
  job, with the parts of one job (its hash, its member of the due set); the
  peers' figure beside it is for jobs due in an hour (bench/memory_peers.py);
- far: 1,000,000 jobs due uniformly 1 to 30 days ahead, with parking on (the
  default one-hour horizon: they wait in PostgreSQL) and off; the growth and the
  enqueue rate of each.

    .venv/bin/python -m bench.redis_memory       # on private servers of its own
    make bench                                   # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.runner_daemon import RunnerDaemon, write_config
from bench.servers import private_servers
from runner import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers
from runner.store import redis_client
from tests.chaos.servers import DEBIAN_REDIS, RedisServer

NEAR_JOBS = 100_000
EVENTS_KEEP_S = 1  # recorded transitions are trimmed after this (runner's default: 2 minutes)
NEAR_DUE_S = 59 * 60.0  # the latest minute inside runner's default one-hour park horizon
FAR_JOBS = 1_000_000
CHUNK = 2000
NEAR_TARGET_BYTES = 200  # per near-term job, recorder running, on the embedded Valkey
DEBIAN_TARGET_BYTES = 250  # the same on Debian's Redis 7 (no key embedded in its entry)
FAR_TARGET_BYTES = 5_000_000  # for all the far jobs, parking on
DAY_S = 86400.0


@dataclass
class Growth:
    jobs: int
    bytes: int
    enqueue_s: float

    @property
    def per_job(self) -> float:
        return self.bytes / self.jobs

    @property
    def rate(self) -> float:
        return self.jobs / self.enqueue_s

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs, "bytes": self.bytes, "bytes_per_job": round(self.per_job, 1),
            "enqueue_s": round(self.enqueue_s, 2), "enqueue_per_s": round(self.rate),
        }  # fmt: skip


@dataclass
class MemoryFigures:
    server: str
    near: Growth
    job_hash_bytes: int
    due_member_bytes: float
    parked: Growth
    unparked: Growth
    debian: tuple[str, Growth] | None = None  # the near figure on Debian's Redis

    def targets(self) -> dict[str, bool]:
        met = {
            "near_bytes_per_job": self.near.per_job <= NEAR_TARGET_BYTES,
            "far_parked_growth": self.parked.bytes < FAR_TARGET_BYTES,
        }
        if self.debian is not None:
            met["near_bytes_per_job_debian"] = self.debian[1].per_job <= DEBIAN_TARGET_BYTES
        return met

    def as_json(self) -> dict[str, Any]:
        return {
            "server": self.server, "near": self.near.as_json(),
            "job_hash_bytes": self.job_hash_bytes, "due_member_bytes": self.due_member_bytes,
            "far_parked": self.parked.as_json(), "far_not_parked": self.unparked.as_json(),
            "debian": None if self.debian is None else
            {"server": self.debian[0], "near": self.debian[1].as_json()},
            "targets": self.targets(),
        }  # fmt: skip


def in_db(url: str, db: int) -> str:
    """The URL for Redis database `db`: each phase starts from an empty keyspace, so
    no phase pays for the growth of another's main hash table."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _config(servers: EmbeddedServers, folder: Path, phase: str, parking: bool, db: int, *,
            redis_url: str | None = None) -> Path:  # fmt: skip
    log_file = folder / f"{phase}.log"
    path = write_config(
        folder / f"{phase}.toml", in_db(redis_url or servers.redis_url, db), servers.database_url,
        "runner", log_file,  # the default prefix, as in production: it is in every key
    )  # fmt: skip
    path.write_text(path.read_text() + f'[events]\nkeep = "{EVENTS_KEEP_S}s"\n')
    if not parking:
        path.write_text(path.read_text() + '[daemon]\npark_horizon = "off"\n')
    return path


async def _used(client: Client) -> int:
    return int((await client.redis.info("memory"))["used_memory"])


async def _settled(client: Client, timeout: float = 900) -> int:
    """used_memory once the recorder has drained the stream and the recorded entries
    are trimmed (the config keeps them EVENTS_KEEP: their cost is the stream's, per
    event, not a waiting job's)."""
    deadline = time.monotonic() + timeout
    while (await client.store.recorder_backlog()).entries > 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the recorder did not drain the stream")
        await asyncio.sleep(0.5)
    await asyncio.sleep(EVENTS_KEEP_S + 2.0)  # the recorder trims once a second
    return await _used(client)


async def _grow(client: Client, jobs: int, delay: Any) -> Growth:
    before = await _settled(client)
    started = time.perf_counter()
    for start in range(0, jobs, CHUNK):
        size = min(CHUNK, jobs - start)
        await client.enqueue_many([client.new_job("noop", delay=delay()) for _ in range(size)])
    enqueue_s = time.perf_counter() - started
    return Growth(jobs, await _settled(client) - before, enqueue_s)


def _phase(servers: EmbeddedServers, folder: Path, phase: str, *, parking: bool, db: int,
           work: Any, redis_url: str | None = None) -> Any:  # fmt: skip
    """`work` on a daemon of this phase's config (on `redis_url`, else the servers')."""
    config = _config(servers, folder, phase, parking, db, redis_url=redis_url)
    settings = load_settings(config, env={})
    with RunnerDaemon(config, folder / f"{phase}.log", folder / f"{phase}.out") as daemon:
        daemon.wait_for_line("daemon ready", 60)

        async def run() -> Any:
            async with await Client.connect(settings) as client:
                return await work(client)

        result = asyncio.run(run())
        daemon.stop(60)
    return result


async def _near(client: Client, jobs: int) -> tuple[Growth, int, float]:
    growth = await _grow(client, jobs, lambda: NEAR_DUE_S)
    keys = client.store.keys
    [one] = await client.redis.zrange(keys.due("async"), 0, 0)
    assert isinstance(one, str)
    hash_bytes = int(await client.redis.memory_usage(keys.job(one)) or 0)
    due_bytes = int(await client.redis.memory_usage(keys.due("async"), samples=0) or 0)
    return growth, hash_bytes, due_bytes / jobs


def near(servers: EmbeddedServers, folder: Path, jobs: int = NEAR_JOBS,
         redis_url: str | None = None) -> tuple[Growth, int, float]:  # fmt: skip
    """`jobs` no-op jobs due in 59 minutes, on a daemon of runner's defaults in Redis
    database 1 (of `redis_url`, else the servers'): the growth, one job's hash and one
    due-set member, in bytes."""

    def near_jobs_in(client: Client) -> Any:
        return _near(client, jobs)

    phase = "memory-near" if redis_url is None else "memory-near-debian"
    found: tuple[Growth, int, float] = _phase(
        servers, folder, phase, parking=True, db=1, work=near_jobs_in, redis_url=redis_url
    )
    return found


def near_on_debian(servers: EmbeddedServers, folder: Path) -> tuple[str, Growth] | None:
    """The near figure on the distribution's Redis (Debian's redis-server, `make
    debian-servers`), whose memory per key the embedded Valkey does not show; None
    where it is not installed."""
    if not DEBIAN_REDIS.exists():
        print(f"{DEBIAN_REDIS} is missing: `make debian-servers` installs it", file=sys.stderr)
        return None
    redis = RedisServer(DEBIAN_REDIS, folder / "debian-redis")
    redis.start()
    try:
        growth, _, _ = near(servers, folder, redis_url=redis.url)
        return asyncio.run(_server_version(redis.url)), growth
    finally:
        redis.stop()


def measure(servers: EmbeddedServers, folder: Path, far_jobs: int = FAR_JOBS) -> MemoryFigures:
    print(f"measuring Redis memory ({NEAR_JOBS:,} near jobs, {far_jobs:,} far) ...", flush=True)
    rng = random.Random(7)

    def far() -> float:
        return rng.uniform(DAY_S, 30 * DAY_S)

    def far_jobs_in(client: Client) -> Any:
        return _grow(client, far_jobs, far)

    near_growth, hash_bytes, member = near(servers, folder)
    debian = near_on_debian(servers, folder)
    # Not parked first: a daemon with parking off puts every parked job it finds in
    # the database into Redis, and the phases share one database.
    unparked = _phase(servers, folder, "memory-unparked", parking=False, db=3, work=far_jobs_in)
    parked = _phase(servers, folder, "memory-parked", parking=True, db=2, work=far_jobs_in)
    asyncio.run(_forget_parked(servers.database_url))
    server = asyncio.run(_server_version(servers.redis_url))
    return MemoryFigures(server, near_growth, hash_bytes, round(member, 1), parked, unparked,
                         debian)  # fmt: skip


async def _forget_parked(database_url: str) -> None:
    """The far jobs are not for the phases after this one to run."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM runner_parked_jobs")
    finally:
        await conn.close()


async def _server_version(url: str) -> str:
    redis = redis_client(url)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    name = "valkey" if "valkey_version" in info else "redis"
    return f"{name} {info.get('valkey_version') or info.get('redis_version')}"


def render(f: MemoryFigures) -> str:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    t = f.targets()
    debian = []
    if f.debian is not None:
        server, growth = f.debian
        debian = [
            f"  due in 59 min       {growth.per_job:>8.0f} B/job   target <= {DEBIAN_TARGET_BYTES}"
            f"  {mark(t['near_bytes_per_job_debian'])}   (on {server}, Debian's)"
        ]
    return "\n".join([
        f"redis memory ({f.server}, recorder running)",
        f"  due in 59 min       {f.near.per_job:>8.0f} B/job   target <= {NEAR_TARGET_BYTES}"
        f"  {mark(t['near_bytes_per_job'])}   (hash {f.job_hash_bytes} B, due-set member"
        f" {f.due_member_bytes:.0f} B)",
        *debian,
        f"  {f.parked.jobs:,} far, parked    {f.parked.bytes / 1e6:>8.2f} MB in all"
        f"   target < {FAR_TARGET_BYTES / 1e6:.0f} MB  {mark(t['far_parked_growth'])}"
        f"   enqueue {f.parked.rate:,.0f} jobs/s",
        f"  {f.unparked.jobs:,} far, in Redis  {f.unparked.bytes / 1e6:>8.2f} MB in all"
        f"   ({f.unparked.per_job:.0f} B/job)   enqueue {f.unparked.rate:,.0f} jobs/s",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_memory", description=__doc__)
    parser.add_argument("--far", type=int, default=FAR_JOBS, help="far jobs, each way")
    args = parser.parse_args(argv)
    with private_servers("memory") as (servers, folder):
        figures = measure(servers, folder, args.far)
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
