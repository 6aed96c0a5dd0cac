"""Redis bytes per job for 100,000 no-op jobs due in an hour: arq, Dramatiq and Huey,
beside runner's figure (bench/redis_memory.py, due in 59 minutes: a job due in an
hour or later waits in PostgreSQL under runner's default one-hour park horizon).

Each peer enqueues through its own delay API, under the peer venv, into a Redis
database of its own on the otherwise idle server; the figure is the growth of
used_memory (INFO memory) from before the enqueue to after it, and the database
is flushed after. Where the jobs wait for their hour:

- arq: its job key (with an expiry) and its queue's sorted set; no worker, since a
  worker reads a job only once it is due;
- Dramatiq: its delay queue's list of ids and hash of messages; no worker, since a
  worker would only move up to its delay prefetch of ids to its ack set, the
  messages staying in the hash;
- Huey: its queue, until a worker takes each task, sees its eta and puts it in its
  schedule's sorted set. Its consumer runs until every task is in the schedule,
  where it waits for its hour, and is stopped; both figures are given.

    .venv/bin/python -m bench.memory_peers --peer-python .bench-venv/bin/python --jobs 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench import peer_lateness, peer_process, queue_peers, redis_memory
from bench.redis_memory import Growth
from bench.runner_daemon import REPO
from bench.servers import private_servers
from runner.store import redis_client

DUE_S = 3600.0
SETTLE_S = 1.0  # for the server to free what closed connections held
TIMEOUT_S = 300.0
DBS = {"arq": 4, "dramatiq": 5, "huey": 6}  # redis_memory uses 1 to 3
SETTINGS = {
    "runner": "its defaults, recorder running; due in 59 min (its park horizon is 1 h)",
    "arq": "enqueue_job(_defer_by=3600), no worker; job keys expire a day after due",
    "dramatiq": "send_with_options(delay=3600000), no worker",
    "huey": "schedule(delay=3600), results off; its consumer moved them to its schedule",
}


@dataclass
class PeerMemory:
    """Each system's growth; Huey's also as it stood with the tasks still in its queue."""

    jobs: int
    growth: dict[str, Growth] = field(default_factory=dict)
    huey_queued: Growth | None = None

    def targets(self) -> dict[str, bool]:
        return {}  # a comparison: runner's own target is in the redis_memory section

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"jobs": self.jobs, "due_in_s": DUE_S}
        for name, grown in self.growth.items():
            found[name] = {**grown.as_json(), "settings": SETTINGS[name]}
        if self.huey_queued is not None:
            found["huey"]["in_queue_before_its_consumer"] = self.huey_queued.as_json()
        return found


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[Redis]:
    """A client on the peer's own database, empty before and flushed after."""
    redis = redis_client(url)
    try:
        await redis.flushdb()
        yield redis
    finally:
        await redis.flushdb()
        await redis.aclose()


async def _used(redis: Redis) -> int:
    """used_memory once the server has freed what closed connections and flushes held
    (a lazy flush frees in the background: it would shrink the next figure)."""
    await asyncio.sleep(SETTLE_S)
    for _ in range(int(TIMEOUT_S / 0.1)):
        memory = await redis.info("memory")
        if not int(memory.get("lazyfree_pending_objects", 0)):
            return int(memory["used_memory"])
        await asyncio.sleep(0.1)
    raise TimeoutError("the server kept objects pending a lazy free")


async def _stored(redis: Redis, key: str) -> int:
    """The members of `key`, whichever of list, hash or sorted set it is."""
    kind = str(await redis.type(key))
    count = {"list": redis.llen, "hash": redis.hlen, "zset": redis.zcard}.get(kind)
    return int(await count(key)) if count else 0


async def _expect(redis: Redis, key: str, jobs: int) -> None:
    if (stored := await _stored(redis, key)) != jobs:
        raise RuntimeError(f"{stored} jobs in {key}, not {jobs}")


def _enqueue(python: Path, command: Sequence[str], env: dict[str, str] | None = None) -> float:
    """A peer's enqueue command under the peer venv; the seconds it took to enqueue."""
    done = subprocess.run(
        [str(python), "-m", *command], capture_output=True, text=True, cwd=REPO, env=env,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout)["enqueue_seconds"])


async def _arq(python: Path, url: str, jobs: int) -> Growth:
    queue = f"mem{secrets.token_hex(3)}"
    async with _database(url) as redis:
        before = await _used(redis)
        enqueue_s = await asyncio.to_thread(_enqueue, python, [
            "bench.arq_side", "noop", "--redis", url, "--queue", queue, "--jobs", str(jobs),
            "--delay", repr(DUE_S),
        ])  # fmt: skip
        grown = await _used(redis) - before
        await _expect(redis, queue, jobs)
    return Growth(jobs, grown, enqueue_s)


async def _enqueued(
    redis: Redis, python: Path, app: str, jobs: int, env: dict[str, str]
) -> tuple[int, float]:
    """(used_memory before, enqueue seconds) for `jobs` delayed jobs sent by a peer's app."""
    before = await _used(redis)
    enqueue_s = await asyncio.to_thread(_enqueue, python, [
        app, "enqueue", "--jobs", str(jobs), "--delay", repr(DUE_S),
    ], env)  # fmt: skip
    return before, enqueue_s


async def _dramatiq(python: Path, url: str, jobs: int, folder: Path) -> Growth:
    queue = f"mem{secrets.token_hex(3)}"
    env = queue_peers.peer_env(url, queue, folder / "dramatiq-memory.marks")
    async with _database(url) as redis:
        before, enqueue_s = await _enqueued(redis, python, "bench.dramatiq_app", jobs, env)
        grown = await _used(redis) - before
        await _expect(redis, f"dramatiq:{queue}.DQ.msgs", jobs)
    return Growth(jobs, grown, enqueue_s)


async def _huey(python: Path, url: str, jobs: int, folder: Path) -> tuple[Growth, Growth]:
    """(in its schedule, with its consumer run and stopped; in its queue, before that)."""
    queue = f"mem{secrets.token_hex(3)}"
    env = queue_peers.peer_env(url, queue, folder / "huey-memory.marks")
    async with _database(url) as redis:
        before, enqueue_s = await _enqueued(redis, python, "bench.huey_app", jobs, env)
        queued = await _used(redis) - before
        await _expect(redis, f"huey.redis.{queue}", jobs)
        worker = peer_lateness.HUEY.worker
        proc = peer_process.start(python, worker, env, folder / "huey-memory.out")
        try:
            await _wait_moved(redis, f"huey.redis.{queue}", f"huey.schedule.{queue}", jobs)
        finally:
            peer_process.stop(proc)
        scheduled = await _used(redis) - before
    return Growth(jobs, scheduled, enqueue_s), Growth(jobs, queued, enqueue_s)


async def _wait_moved(redis: Redis, queue: str, schedule: str, jobs: int) -> None:
    """Until Huey's workers have taken every task from its queue into its schedule."""
    deadline = time.monotonic() + TIMEOUT_S
    while await _stored(redis, queue) or await _stored(redis, schedule) < jobs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"huey's consumer did not schedule {jobs} tasks in {TIMEOUT_S}s")
        await asyncio.sleep(0.2)
    await _expect(redis, schedule, jobs)


def measure(python: Path, redis_url: str, folder: Path, jobs: int, runner: Growth | None
            ) -> PeerMemory:  # fmt: skip
    """arq, Dramatiq and Huey one after another, each in its own database; `runner` is
    runner's own figure (bench/redis_memory.py), listed with theirs."""
    print(f"measuring Redis memory of arq, Dramatiq and Huey ({jobs:,} jobs each) ...", flush=True)
    found = PeerMemory(jobs)
    if runner is not None:
        found.growth["runner"] = runner

    def url(name: str) -> str:
        return redis_memory.in_db(redis_url, DBS[name])

    found.growth["arq"] = asyncio.run(_arq(python, url("arq"), jobs))
    found.growth["dramatiq"] = asyncio.run(_dramatiq(python, url("dramatiq"), jobs, folder))
    found.growth["huey"], found.huey_queued = asyncio.run(_huey(python, url("huey"), jobs, folder))
    return found


def render(f: PeerMemory) -> str:
    lines = [f"redis memory per job: {f.jobs:,} no-op jobs due in an hour, each system in a"
             " Redis database of its own (used_memory growth)"]  # fmt: skip
    for name, grown in f.growth.items():
        lines.append(f"  {name:<9}{grown.per_job:>8.0f} B/job   ({SETTINGS[name]})")
    if f.huey_queued is not None:
        lines.append(f"  {'':<9}{f.huey_queued.per_job:>8.0f} B/job   (huey, in its queue before"
                     " its consumer ran)")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_peers", description=__doc__)
    parser.add_argument("--peer-python", type=Path, required=True, help="the peer venv's python")
    parser.add_argument("--jobs", type=int, default=redis_memory.NEAR_JOBS, help="jobs a system")
    args = parser.parse_args(argv)
    with private_servers("memory-peers") as (servers, folder):
        runner, _, _ = redis_memory.near(servers, folder, args.jobs)
        figures = measure(args.peer_python, servers.redis_url, folder, args.jobs, runner)
    print(render(figures))
    print(json.dumps(figures.as_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
