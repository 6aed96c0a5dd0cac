"""Six queues spread over the 3 primaries of a real Redis Cluster, two daemon
processes serving them with weights: every job runs once, Redis and PostgreSQL
agree, each primary runs its share of the commands, and control verbs, cron and
parking work in every queue.

`make test` runs 3,000 jobs; `make chaos` (RUNNER_CHAOS=long) the issue's 30,000.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store import redis_client
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.redis_cluster import RedisClusterServers, queues_on_every_primary
from tests.waiting import eventually

JOBS = 30_000 if os.environ.get("RUNNER_CHAOS") == "long" else 3_000
QUEUES_PER_PRIMARY = 2


async def _commands(port: int) -> int:
    """The commands the node ran so far, those its scripts made included: the work it
    did (a script's own call counts once, whatever the size of its batch)."""
    node = Redis(port=port, decode_responses=True)
    try:
        stats = await node.info("commandstats")
    finally:
        await node.aclose()
    return sum(int(v.get("calls", 0)) for v in stats.values() if isinstance(v, dict))


async def _agree(client: Client, pg: PgStore, ids: list[str]) -> bool:
    """Every job succeeded, as Redis and PostgreSQL both say."""
    live = await client.store.job_states(ids)
    recorded = await pg.recorded_states(ids)
    return all(live.get(i) == recorded.get(i) == "succeeded" for i in ids)


def _started(daemons: list[DaemonProcess]) -> Counter[str]:
    return Counter(line["job_id"] for d in daemons for line in d.events("job started"))


async def _control_verbs(client: Client, queue: str) -> dict[str, str]:
    """Pause, resume, update, cancel, retry and delete on jobs of `queue`; the state
    each job should end in."""
    a, b, c = [await client.enqueue("echo", [queue, n], queue=queue, delay=60) for n in range(3)]
    await client.pause(a)
    await client.resume(a)
    await client.update(a, delay=0)
    await client.cancel(b)
    await client.retry(b)
    await client.delete(c)
    return {a: "succeeded", b: "succeeded", c: "deleted"}


async def test_six_queues_on_two_daemons_over_three_primaries(
    cluster_settings: Callable[..., Settings],
    redis_cluster: RedisClusterServers,
    pg: PgStore,
    cluster_prefix: str,
    tmp_path: Path,
    spawn: Callable[..., DaemonProcess],
) -> None:
    placed = queues_on_every_primary(redis_cluster, cluster_prefix, QUEUES_PER_PRIMARY)
    queues = [q for names in placed.values() for q in names]
    # Weights 1 to 3, the same total on each primary (1+3, 2+2, 3+1): with the jobs
    # spread evenly over the queues, each primary has the same share of the work.
    weights = {
        q: (1 + p, 3 - p)[i] for p, names in enumerate(placed.values()) for i, q in enumerate(names)
    }
    settings = cluster_settings(park_horizon=2.0)
    sections: dict[str, Any] = {
        "redis": {"url": redis_cluster.url, "key_prefix": cluster_prefix, "cluster": True},
        "daemon": {"queues": weights, "park_horizon": "2s"},
        "cron__tick": {"schedule": "* * * * * *", "task": "echo", "queue": queues[1]},
    }
    assert settings.database_url is not None
    config = daemon_config_file(
        tmp_path / "runner.toml", redis_cluster.url, settings.database_url, cluster_prefix,
        **sections,
    )  # fmt: skip
    before = {port: await _commands(port) for port in placed}
    daemons = [spawn(config), spawn(config)]
    for daemon in daemons:
        daemon.wait_ready()
    redis = redis_client(redis_cluster.url, cluster=True)
    client = Client(settings, redis, pg)
    try:
        ids: dict[str, str] = {}
        for n in range(0, JOBS, 1000):
            batch = [client.new_job("echo", [i], queue=queues[i % 6]) for i in range(n, n + 1000)]
            for job in batch:
                ids[job.id] = job.queue
            await client.enqueue_many(batch)
        expected: dict[str, str] = {}
        for queue in queues:
            expected.update(await _control_verbs(client, queue))
        parked = await client.enqueue("echo", ["parked"], queue=queues[4], delay=4)
        assert (await client.get(parked)).parked

        def all_ran() -> bool:
            return len(set(_started(daemons)) & set(ids)) == len(ids)

        await eventually(all_ran, timeout=120, what="every job running")
        assert await client.result(parked, timeout=15) == {"args": ["parked"], "kwargs": {}}
        for job_id, state in expected.items():
            assert (await client.wait(job_id, timeout=15)).state == state
        after = {port: await _commands(port) for port in placed}
        await asyncio.sleep(1)  # a job started twice would show by now
        started = _started(daemons)
        assert max(started[i] for i in ids) == 1  # every job once
        await eventually(lambda: _agree(client, pg, list(ids)), timeout=60,
                         what="Redis and PostgreSQL agreeing on every job")  # fmt: skip
        for job_id in list(ids)[::97]:  # and each job is in its queue in both
            row = await pg.get_job(job_id)
            assert row is not None and row["queue"] == ids[job_id]
            assert (await client.get(job_id)).queue == ids[job_id]
        parked_row = await pg.get_job(parked)
        assert parked_row is not None and parked_row["queue"] == queues[4]
        ticks = [line for d in daemons for line in d.events("cron tick enqueued")]
        assert ticks and (await client.get(ticks[0]["job_id"])).queue == queues[1]
    finally:
        await client.close()
    calls = {port: after[port] - before[port] for port in placed}
    mean = sum(calls.values()) / len(calls)
    print(f"commands per primary ({JOBS} jobs, 6 queues): {calls}")
    assert all(abs(c - mean) <= 0.3 * mean for c in calls.values()), calls


async def test_the_paused_tasks_copies_are_put_right_in_every_queues_slot(
    cluster_settings: Callable[..., Settings], redis_cluster: RedisClusterServers, pg: PgStore
) -> None:
    """A queue's copy of the paused tasks that went wrong (a crash between the record's
    write and the copies') is made the record's again, in its own slot, on a cluster."""
    settings = cluster_settings()
    client = Client(settings, redis_client(redis_cluster.url, cluster=True), pg)
    try:
        await client.enqueue("echo", [1], queue="mail", delay=60)
        await client.pause_task("echo")
        copy = client.store.queue("mail").keys.paused
        await client.redis.hdel(copy, "echo")
        await client.redis.hset(copy, "stale", "x")
        await client.store.sync_paused()
        assert set(await client.redis.hkeys(copy)) == {"echo"}
    finally:
        await client.close()
