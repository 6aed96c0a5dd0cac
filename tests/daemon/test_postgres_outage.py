"""Postgres stopped for 20 s while jobs run: no transition is lost or written twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner.client import Client
from runner.config import Settings
from runner.embedded import EmbeddedServers
from runner.store.pg_store import PgStore
from tests.daemon.process import DaemonProcess, daemon_config_file

OUTAGE_S = 20


async def test_no_transition_is_lost_while_postgres_is_down(
    own_postgres: EmbeddedServers,
    servers: object,
    redis: Redis,
    prefix: str,
    tmp_path: Path,
    spawn: Callable[..., DaemonProcess],
    make_settings: Callable[..., Settings],
) -> None:
    """Jobs keep running through the outage; afterwards every job has exactly seq 1, 2, 3."""
    redis_url = make_settings().redis_url
    assert redis_url is not None
    config = daemon_config_file(
        tmp_path / "runner.toml", redis_url, own_postgres.database_url, prefix
    )
    daemon = spawn(config)
    daemon.wait_ready()
    client = Client(make_settings(database_url=own_postgres.database_url), redis)
    ids = [await client.enqueue("echo", [i]) for i in range(20)]
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_postgres.stop_postgres)
    for second in range(OUTAGE_S):
        ids += [await client.enqueue("echo", [second, i]) for i in range(10)]
        await asyncio.sleep(1)
    during = [await client.get(job_id) for job_id in ids[20:]]
    assert all(job.state == "succeeded" for job in during[:-10])  # the work went on
    assert daemon.events("recorder: postgres unavailable; retrying")
    await asyncio.to_thread(own_postgres.start_postgres)
    pg = await PgStore.connect(own_postgres.database_url)
    try:
        for _ in range(300):
            done = await pg.pool.fetchval(
                "SELECT count(*) FROM runner_job_events WHERE to_state = 'succeeded'"
            )
            if done == len(ids):
                break
            await asyncio.sleep(0.1)
        rows = await pg.pool.fetch("SELECT job_id, seq, to_state FROM runner_job_events")
    finally:
        await pg.close()
    by_job: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append((row["seq"], row["to_state"]))
    assert sorted(by_job) == sorted(ids)
    expected = [(1, "scheduled"), (2, "running"), (3, "succeeded")]
    assert all(sorted(events) == expected for events in by_job.values())
    assert len(rows) == 3 * len(ids)
