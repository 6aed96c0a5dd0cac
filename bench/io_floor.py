"""The floor of the io workload: a bare pool of threads, each claiming its own next
job with runner's claim script (store ThreadClaims, as a daemon's io thread does) and
running the same body (bench/work.py), with nothing else: no loop, no outcome sent,
no log, no history. What runner's io figure is measured against.

    .venv/bin/python -m bench.io_floor       # on private servers of its own
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from pathlib import Path

from bench import work
from bench.servers import private_servers
from runner import Client
from runner.config.settings import Settings, TaskSettings
from runner.servers.embedded import EmbeddedServers
from runner.store import RedisStore, redis_client

LEASE_MS = 60_000


def _settings(servers: EmbeddedServers, prefix: str) -> Settings:
    task = TaskSettings("work", "bench.work:blocking_io", "io")
    return Settings(redis_url=servers.redis_url, database_url=servers.database_url,
                    key_prefix=prefix, tasks={"work": task})  # fmt: skip


async def _enqueue(settings: Settings, jobs: int, seconds: float, bodies: Path) -> RedisStore:
    async with await Client.connect(settings) as client:
        await client.enqueue_many(
            [client.new_job("work", [seconds, str(bodies)]) for _ in range(jobs)]
        )
        return client.store


def floor_wall(servers: EmbeddedServers, folder: Path, jobs: int, seconds: float,
               threads: int) -> float:  # fmt: skip
    """Seconds from the first body's start to the last one's end."""
    bodies = folder / f"bodies-floor-{secrets.token_hex(3)}.txt"
    settings = _settings(servers, f"bench-floor-{secrets.token_hex(3)}")
    store = asyncio.run(_enqueue(settings, jobs, seconds, bodies))
    claims = RedisStore(redis_client(servers.redis_url), store.keys).thread_claims(
        servers.redis_url, cluster=False
    )

    def drain() -> None:
        while True:
            now = int(time.time() * 1000)
            found = claims.claim_one("default", "io", now, "floor", lease_until_ms=now + LEASE_MS,
                                     aging_ms=1000)  # fmt: skip
            if found is None or not found.jobs:
                return
            work.blocking_io(seconds, str(bodies))

    pool = [threading.Thread(target=drain) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    claims.close()
    done, wall = work.span(str(bodies))
    if done != jobs:
        raise RuntimeError(f"the floor ran {done} of {jobs} io jobs")
    return wall


def main() -> None:
    with private_servers("io-floor") as (servers, folder):
        for _ in range(3):
            print(f"floor: {floor_wall(servers, folder, 1000, 0.02, 50):.3f} s", flush=True)


if __name__ == "__main__":
    main()
