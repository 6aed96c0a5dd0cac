"""runner on a real Redis Cluster of 3 primaries and 3 replicas (`[redis] cluster = true`).

Every key of a prefix carries the hash tag `{prefix}`, so all of runner's state is
in one slot on one primary: the scripts, pipelines and stream reads go there
through redis-py's cluster client, and the wake and cancel messages travel by
sharded pub/sub (SPUBLISH from the scripts, SSUBSCRIBE on that primary).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.errors import NotReplicated
from runner.jobs import NewJob
from runner.store import RedisStore, StreamEntry, redis_client
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.harness import Running
from tests.daemon.process import daemon_config_file
from tests.redis_cluster import RedisClusterServers
from tests.waiting import eventually


async def _commands(port: int, name: str) -> int:
    """How many times the node ran command `name` since it started."""
    node = Redis(port=port, decode_responses=True)
    try:
        stats = await node.info("commandstats")
    finally:
        await node.aclose()
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


async def _state(client: Client, job_id: str, state: str) -> bool:
    return (await client.get(job_id)).state == state


async def test_a_daemon_on_a_cluster_runs_cancels_and_records(
    cluster_settings: Callable[..., Settings], redis_cluster: RedisClusterServers, pg: PgStore
) -> None:
    """A daemon with `cluster = true` runs async, io and cpu jobs, and a retried one;
    a running job cancelled from a client stops at once (the cancel crossed by
    SSUBSCRIBE on the slot's primary); the client's wait() is woken through its own
    cluster connection; Postgres holds every history; and the scripts published
    with SPUBLISH on the primary serving the prefix's slot, never with PUBLISH."""
    settings = cluster_settings()
    primary = redis_cluster.primary_of(Keys(settings.key_prefix).events)
    published_before = await _commands(primary.port, "publish")
    redis = redis_client(redis_cluster.url, cluster=True)
    client = Client(settings, redis, database_url=settings.database_url)
    try:
        async with Running(settings):
            ran = [
                await client.enqueue("echo", [1]),
                await client.enqueue("sleep_io", [0.01]),
                await client.enqueue("burn_cpu", [0.01]),
            ]
            failing = await client.enqueue("fail", [])
            long = await client.enqueue("sleep_async", [4.5])
            await eventually(lambda: _state(client, long, "running"), what="the long job running")
            await client.cancel(long)
            cancelled = await asyncio.wait_for(client.wait(long), 2.0)
            ended = [await client.wait(job_id, timeout=20, recorded=True) for job_id in ran]
            failed = await client.wait(failing, timeout=20, recorded=True)
    finally:
        await client.close()
    assert cancelled.state == "cancelled"
    assert [job.state for job in ended] == ["succeeded"] * 3
    assert failed.state == "failed" and failed.attempt == 4
    for job_id in ran:
        history = await pg.job_history(job_id)
        assert [h["to_state"] for h in history] == ["scheduled", "running", "succeeded"]
    assert await _commands(primary.port, "spublish") > 0
    assert await _commands(primary.port, "publish") == published_before


async def test_status_and_the_client_work_against_a_cluster(
    cluster_settings: Callable[..., Settings],
    redis_cluster: RedisClusterServers,
    database_url: str,
    cluster_prefix: str,
    tmp_path: Path,
) -> None:
    """`runner status --json`, `enqueue` and `show` from the command line, with
    `[redis] cluster = true` in the config, reach the cluster; `check-config`
    accepts it and refuses a cluster key that is not a boolean."""
    settings = cluster_settings()
    # The daemon's lease, so that `status` counts it alive between two heartbeats (a 2 s
    # window against a heartbeat every 1.7 s missed it once on a loaded machine).
    config = daemon_config_file(
        tmp_path / "runner.toml", redis_cluster.url, database_url, cluster_prefix,
        redis={"cluster": True}, daemon={"lease_ttl": f"{settings.lease_ttl}s"},
    )  # fmt: skip
    async with Running(settings):
        job = _cli(config, "enqueue", "echo", "--args", "[3]", "--json")["id"]
        redis = redis_client(redis_cluster.url, cluster=True)
        async with Client(settings, redis) as client:
            await client.wait(job, timeout=10)
        shown = _cli(config, "show", job, "--json")
        status = _cli(config, "status", "--json")
    assert shown["state"] == "succeeded" and shown["result"]["args"] == [3]
    assert len(status["daemons"]) == 1
    assert _run(config, "check-config").returncode == 0
    bad = config.read_text().replace("cluster = true", 'cluster = "yes"')
    (tmp_path / "bad.toml").write_text(bad)
    refused = _run(tmp_path / "bad.toml", "check-config")
    assert (
        refused.returncode != 0
        and "redis.cluster: must be true or false" in refused.stdout + refused.stderr
    )


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _cli(config: Path, *args: str) -> dict[str, Any]:
    done = _run(config, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def test_with_wait_replicas_an_enqueue_returns_once_the_replica_holds_it(
    cluster_settings: Callable[..., Settings], redis_cluster: RedisClusterServers
) -> None:
    """With `wait_replicas = 1` an enqueue returns only once the slot's replica holds
    the job: while the replica is stopped (SIGSTOP, shorter than the node timeout)
    the enqueue waits, and once it returns the replica has the job. Without it the
    enqueue returns at once, whatever the replica."""
    keys = Keys(cluster_settings().key_prefix)
    replica = redis_cluster.replica_of(keys.events)
    held = {}
    for wait_replicas in (0, 1):
        redis = redis_client(redis_cluster.url, cluster=True)
        async with Client(cluster_settings(wait_replicas=wait_replicas), redis) as client:
            await client.enqueue("echo", [0])  # connected, scripts loaded
            os.kill(replica.proc.pid, signal.SIGSTOP)
            try:
                enqueue = asyncio.create_task(client.enqueue("echo", [wait_replicas]))
                await asyncio.sleep(0.3)
                held[wait_replicas] = not enqueue.done()
            finally:
                os.kill(replica.proc.pid, signal.SIGCONT)
            job_id = await enqueue
            if wait_replicas:
                reader = Redis(port=replica.port, decode_responses=True)
                try:
                    await reader.execute_command("READONLY")  # type: ignore[no-untyped-call]  # no typed verb
                    on_replica = await reader.exists(keys.job(job_id))
                finally:
                    await reader.aclose()
    assert held == {0: False, 1: True}
    assert on_replica == 1


async def test_an_enqueue_no_replica_confirmed_in_time_says_so(
    cluster_settings: Callable[..., Settings], redis_cluster: RedisClusterServers
) -> None:
    """With `wait_replicas = 1` and the slot's replica stopped past WAIT's timeout (but
    within the node timeout: no failover), the enqueue raises NotReplicated naming the
    job, which the primary holds; enqueued again under its id once the replica is
    back, it is confirmed and not made twice."""
    settings = cluster_settings(wait_replicas=1)
    replica = redis_cluster.replica_of(Keys(settings.key_prefix).events)
    redis = redis_client(redis_cluster.url, cluster=True)
    async with Client(settings, redis) as client:
        await client.enqueue("echo", [0])  # connected, scripts loaded
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(NotReplicated) as refused:
                await client.enqueue("echo", [1], job_id="unconfirmed")
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        again = await client.enqueue_result("echo", [1], job_id="unconfirmed")
        state = (await client.get("unconfirmed")).state
    assert refused.value.job_ids == ["unconfirmed"]
    assert "0 of the 1 replicas" in str(refused.value)
    assert not again.created and state == "scheduled"


async def test_the_stream_verbs_on_a_cluster(
    cluster_settings: Callable[..., Settings], redis_cluster: RedisClusterServers
) -> None:
    """The transition stream through the cluster client: a recorder's group reads an
    entry (XREADGROUP), another recorder takes it over once its reader died
    (XAUTOCLAIM), acknowledges it (XACK), and trimming (XINFO, XPENDING, XTRIM) then
    drops it; the live feed's XREAD BLOCK on a connection of its own sees a new one."""
    settings = cluster_settings()
    store = RedisStore(redis_client(redis_cluster.url, cluster=True), Keys(settings.key_prefix))
    feed = store.on_own_connection()
    try:
        await store.ensure_event_group()
        _, last = await store.stream_ends()
        await store.enqueue(NewJob("one", "echo", "async", "[]", "{}", 0, 1), "test", 1)
        read = await store.read_events("dead-recorder", 10, None)
        taken = await store.claim_stale_events("live-recorder", 0, 10)
        await store.ack_events([entry.id for entry in taken])
        backlog = await store.recorder_backlog()
        await store.trim_events(0, int(time.time() * 1000) + 1000)
        reading: asyncio.Future[list[StreamEntry]] = asyncio.ensure_future(
            feed.read_streams_after({"default": last}, 10, 5000)
        )
        await asyncio.sleep(0.1)
        await store.enqueue(NewJob("two", "echo", "async", "[]", "{}", 0, 1), "test", 2)
        seen = await asyncio.wait_for(reading, 5)
        first, _ = await store.stream_ends()
    finally:
        await feed.close()
        await store.close()
    assert [entry.id for entry in taken] == [entry.id for entry in read] and len(read) == 1
    assert backlog.pending == 0
    assert len(seen) >= 1 and first == seen[-1].id
