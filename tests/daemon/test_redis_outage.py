"""Redis away (stopped 3 s) or refusing writes (out of memory, read-only) under a running
daemon: it says so, waits, and goes on."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.servers.embedded import _valkey_binary
from runner.store.postgres.store import PgStore
from tests.chaos.servers import RedisServer
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.waiting import eventually

OUTAGE_S = 3.0


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Valkey that keeps its data across a restart (append-only, fsync always)."""
    server = RedisServer(_valkey_binary(), tmp_path / "valkey", appendfsync="always")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def _all_succeeded(config: Path, ids: list[str]) -> bool:
    async with await Client.connect(load_settings(config, {})) as client:
        states = [(await client.get(job_id)).state for job_id in ids]
    return states == ["succeeded"] * len(ids)


async def _enqueue(config: Path, task: str, args: list[object], count: int) -> list[str]:
    async with await Client.connect(load_settings(config, {})) as client:
        return [await client.enqueue(task, args) for _ in range(count)]


async def _each_ran_once(pg: PgStore, ids: list[str]) -> None:
    """Once Postgres has every job's success: each job started once and succeeded once."""
    query = "SELECT job_id FROM runner_job_events WHERE to_state = $1 AND job_id = ANY($2)"

    async def recorded(state: str) -> list[str]:
        return [row["job_id"] for row in await pg.pool.fetch(query, state, ids)]

    async def all_recorded() -> bool:
        return len(await recorded("succeeded")) >= len(ids)

    await eventually(all_recorded, timeout=30, what="every success recorded in Postgres")
    assert Counter(await recorded("running")) == Counter(ids)
    assert Counter(await recorded("succeeded")) == Counter(ids)


async def test_a_daemon_rides_out_a_redis_outage(
    own_redis: RedisServer, tmp_path: Path, database_url: str, prefix: str,
    spawn: Callable[..., DaemonProcess], pg: PgStore,
) -> None:  # fmt: skip
    """Redis stopped for 3 s while io jobs run (their outcomes due during the outage) and
    started again with its data: the daemon logs the outage, stays up, reconnects by
    itself, and every job, before and after, succeeds exactly once."""
    config = daemon_config_file(tmp_path / "runner.toml", own_redis.url, database_url, prefix)
    daemon = spawn(config)
    daemon.wait_ready()
    ids = await _enqueue(config, "sleep_io", [1.0], 4)
    daemon.wait_for(lambda _: len(daemon.events("job started")) == 4)
    await asyncio.to_thread(own_redis.stop, signal.SIGTERM)
    await asyncio.sleep(OUTAGE_S)  # the outage itself: the jobs end while Redis is away
    await asyncio.to_thread(own_redis.start)
    ids += await _enqueue(config, "echo", [1], 10)
    await eventually(lambda: _all_succeeded(config, ids), timeout=30, what="every job done")
    assert daemon.proc.poll() is None
    assert [line for line in daemon.raw if "unavailable; retrying" in line]
    await _each_ran_once(pg, ids)


async def test_a_daemon_rides_out_redis_refusing_writes(
    own_redis: RedisServer, tmp_path: Path, database_url: str, prefix: str,
    spawn: Callable[..., DaemonProcess], pg: PgStore,
) -> None:  # fmt: skip
    """Redis up but refusing writes, first out of memory (maxmemory 1 byte), then read-only
    (a replica of a master that is not there), each for 2 s while jobs run and end: not
    connection errors, yet the daemon logs them, stays up, and every job succeeds once."""
    config = daemon_config_file(tmp_path / "runner.toml", own_redis.url, database_url, prefix)
    daemon = spawn(config)
    daemon.wait_ready()
    admin = Redis.from_url(own_redis.url)
    ids: list[str] = []
    try:
        for refuse, restore in (
            (partial(admin.config_set, "maxmemory", 1), partial(admin.config_set, "maxmemory", 0)),
            (partial(admin.replicaof, "127.0.0.1", 1), partial(admin.replicaof, "NO", "ONE")),
        ):
            batch = await _enqueue(config, "sleep_io", [0.5], 4)
            daemon.wait_for(partial(_started_all, daemon, batch))
            await refuse()
            await asyncio.sleep(2)  # the refusal's length: the jobs end meanwhile
            await restore()
            ids += batch
    finally:
        await admin.aclose()
    await eventually(lambda: _all_succeeded(config, ids), timeout=30, what="every job done")
    assert daemon.proc.poll() is None
    retried = "\n".join(line for line in daemon.raw if "retrying" in line)
    assert "OutOfMemoryError" in retried and "ReadOnlyError" in retried
    await _each_ran_once(pg, ids)


def _started_all(daemon: DaemonProcess, ids: list[str], _: object) -> bool:
    started = {line.get("job_id") for line in daemon.events("job started")}
    return set(ids) <= started
