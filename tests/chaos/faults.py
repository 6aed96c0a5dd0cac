"""The faults a scenario inflicts, one at a time, each over when its coroutine returns:
the server is back up, the killed daemon started again, the frozen one thawed."""

from __future__ import annotations

import asyncio
import random
import signal

from tests.chaos.cluster import Cluster


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
    await cluster.fleet.kill_and_restart(rng)


async def freeze_a_daemon(cluster: Cluster, rng: random.Random, seconds: float) -> None:
    daemon = rng.choice([d for d in cluster.fleet.daemons if d.alive()])
    daemon.suspend()
    try:
        await asyncio.sleep(seconds)
    finally:
        daemon.resume()
