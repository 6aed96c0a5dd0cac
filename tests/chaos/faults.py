"""The faults a scenario inflicts, one at a time, each over when its coroutine returns:
the server is back up, the killed daemon started again, the frozen one thawed."""

from __future__ import annotations

import asyncio
import random
import signal

from redis.exceptions import RedisError

from runner.client.status import status_of
from tests.chaos.cluster import Cluster
from tests.chaos.daemons import ChaosDaemon


async def stop_postgres_for(cluster: Cluster, seconds: float) -> None:
    """A clean ("fast") PostgreSQL shutdown, and a start on the same port and data."""
    assert cluster.servers is not None
    await asyncio.to_thread(cluster.servers.postgres.stop)
    try:
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(cluster.servers.postgres.start)


async def stop_redis_for(cluster: Cluster, seconds: float, how: signal.Signals) -> None:
    """SIGTERM (a clean stop) or SIGKILL (a crash), and a start on the same port and
    append-only file."""
    assert cluster.servers is not None
    await asyncio.to_thread(cluster.servers.redis.stop, how)
    try:
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(cluster.servers.redis.start)


async def kill_a_daemon(cluster: Cluster, rng: random.Random) -> None:
    cluster.fleet.kill_and_restart(await _a_busy_daemon(cluster, rng))


async def _a_busy_daemon(cluster: Cluster, rng: random.Random) -> ChaosDaemon:
    """A live daemon that holds running jobs, as `runner status` sees them (any live
    one if none is seen busy within a second): freezing an idle daemon tests nothing."""
    alive = {d.current.proc.pid: d for d in cluster.fleet.daemons if d.alive()}
    for _ in range(20):
        try:
            doc = await status_of(cluster.client, {})
        except RedisError:  # just back from an outage: any daemon will do
            break
        pids = {d["id"]: d.get("pid") for d in doc["daemon_details"]}
        busy = [pids.get(owner) for owner, n in doc["running_by_daemon"].items() if n > 0]
        candidates = [alive[pid] for pid in busy if pid in alive]
        if candidates:
            return rng.choice(candidates)
        await asyncio.sleep(0.05)
    return rng.choice(list(alive.values()))


async def freeze_a_daemon(cluster: Cluster, rng: random.Random, seconds: float) -> None:
    daemon = await _a_busy_daemon(cluster, rng)
    daemon.suspend()
    try:
        await asyncio.sleep(seconds)
    finally:
        daemon.resume()
