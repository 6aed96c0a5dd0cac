"""The Lua scripts on a Redis Cluster node.

A job's keys are named inside the scripts from the {prefix} key they are given:
claim, reap and release take ids out of a sorted set, and a held job's set is
named by its task, so those keys cannot be listed in KEYS beforehand. Every key
carries the same {prefix} hash tag, so all of them live in one slot, the slot of
the keys that are declared: a cluster node runs such a script. This makes each
script in SCRIPT_NAMES do its work on a one-node cluster-mode Valkey, and reads
the node's slowlog (set to log every command) to check that none was left out.
The same scenario runs on a real cluster of 3 primaries and 3 replicas
(tests/redis_cluster.py) through runner's cluster client (`[redis] cluster =
true`), every node logging every command.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from runner.client.client import Client
from runner.client.job_info import JobInfo
from runner.config.cron import CronSettings
from runner.config.notify import NotifySettings
from runner.config.settings import Settings
from runner.jobs import EnqueueResult
from runner.servers.embedded import _valkey_binary, free_port
from runner.store import redis_client
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.scripts import SCRIPT_NAMES, check_scripts, script_source
from runner.store.redis.upgrade import upgrade_job_hashes
from tests.daemon.harness import Running, drain
from tests.notify.receiver import Receiver
from tests.redis_cluster import start_cluster
from tests.waiting import eventually

SLOWLOG_LEN = 1_000_000


@dataclass(frozen=True)
class Target:
    url: str
    cluster_client: bool  # runner's cluster client ([redis] cluster = true)
    node_urls: list[str]  # the nodes whose slowlogs tell which scripts ran


@pytest.fixture(params=["one-node valkey", "3+3 redis cluster"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "one-node valkey":
        async for url in _one_node(tmp_path):
            yield Target(url, False, [url])
        return
    cluster = await asyncio.to_thread(start_cluster)
    try:
        urls = [f"redis://127.0.0.1:{node.port}/0" for node in cluster.nodes]
        for url in urls:
            admin = Redis.from_url(url)
            await admin.config_set("slowlog-log-slower-than", 0)
            await admin.config_set("slowlog-max-len", SLOWLOG_LEN)
            await admin.aclose()
        yield Target(cluster.url, True, urls)
    finally:
        await asyncio.to_thread(cluster.close)


async def _one_node(tmp_path: Path) -> AsyncIterator[str]:
    """A one-node Valkey cluster serving every slot."""
    port = free_port()
    args = [str(_valkey_binary()), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(tmp_path), "--save", "", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(free_port()),  # not port + 10000: past 65535
            "--slowlog-log-slower-than", "0", "--slowlog-max-len", str(SLOWLOG_LEN)]  # fmt: skip
    proc = await asyncio.to_thread(subprocess.Popen, args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    admin = Redis.from_url(url, decode_responses=True)
    try:
        await eventually(_answers(admin), what="the cluster node answering")
        await admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)  # type: ignore[no-untyped-call]  # no typed verb
        await eventually(_cluster_ok(admin), what="the cluster serving every slot")
        yield url
    finally:
        await admin.aclose()
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


def _answers(admin: Redis) -> Callable[[], object]:
    async def answers() -> bool:
        try:
            return bool(await admin.ping())
        except ConnectionError:
            return False

    return answers


def _cluster_ok(admin: Redis) -> Callable[[], object]:
    async def ok() -> bool:
        info = await admin.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]  # no typed verb
        return "cluster_state:ok" in str(info)

    return ok


async def test_every_script_runs_on_a_cluster_node(
    target: Target, make_settings: Callable[..., Settings], pg: PgStore
) -> None:
    """Each script does its work on the cluster node: async, io, cpu, failing and
    retried jobs, pause/resume of a task (its held set), update, cancel, delete and
    retry requests, a cron tick, a job in the older hash layout renamed, a job moved
    beyond the park horizon parked and brought back, a long job kept by its renewed
    lease, a dead daemon's expired lease reaped, a finished chosen id forgotten and
    then refused from the retired ids alone, a forgotten failed job revived by a
    retry, a webhook sink holding its lease and delivering, a dead letter replayed.
    The node's own log of commands shows that every script in SCRIPT_NAMES
    ran: one added later fails here until it does."""
    cron = {"tick": CronSettings(name="tick", schedule="* * * * * *", task="noop")}
    receiver = Receiver(SINK_SECRET)
    await receiver.start()
    sink = NotifySettings(name="app", url=receiver.url, secret=SINK_SECRET)
    cluster_url = target.url
    settings = make_settings(redis_url=cluster_url, redis_cluster=target.cluster_client,
                             cron=cron, lease_ttl=1, keep_finished=2,
                             notify={"app": sink})  # fmt: skip
    redis = (
        redis_client(cluster_url, cluster=True)
        if target.cluster_client
        else Redis.from_url(cluster_url, decode_responses=True)
    )
    client = Client(settings, redis, pg)
    keys = Keys(settings.key_prefix)
    try:
        await check_scripts(redis)  # loaded: each call is an EVALSHA the slowlog names
        orphan = await _claimed_by_a_dead_daemon(client)
        await _older_layout_job(redis, keys)
        assert await upgrade_job_hashes(redis, keys, client.store.scripts) == 1
        ran = [
            await client.enqueue("echo", [1]),
            await client.enqueue("sleep_io", [0.01]),
            await client.enqueue("burn_cpu", [0.01]),
        ]
        long = await client.enqueue("sleep_async", [2.5])  # past two leases of 1 s
        chosen = await client.enqueue("echo", [6], job_id="cluster-chosen")
        far = await client.enqueue("echo", [5], delay=60)
        await client.update(far, delay=2 * 3600)  # beyond the park horizon: parked
        was_parked = not await client.store.job_exists(far)
        await client.update(far, delay=0)  # brought back into Redis, then due now
        failed = await client.enqueue("fail_once", ["no"])
        await client.pause_task("echo")
        held = await client.enqueue("echo", [2])
        later = await client.enqueue("echo", [3], delay=600)
        gone = await client.enqueue("echo", [4], delay=600)
        await client.pause(later)
        await client.resume(later)
        await client.update(later, delay=0)
        await client.cancel(gone)
        await client.delete(gone)
        async with Running(settings) as running:
            await eventually(lambda: _cron_ran(pg), what="a cron tick run")
            await client.resume_task("echo")
            await eventually(lambda: _in_state(client, failed, "failed"), what="the job failing")
            await client.retry(failed)  # before Redis forgets it, keep_finished after
            every_job = [*ran, failed, held, later, long, orphan, chosen, far, "old1"]
            done = await eventually(lambda: _all_ended(client, every_job))
            reused = await _reused_once_forgotten(client, chosen)
            await eventually(lambda: _forgotten(client, failed), what=f"Redis forgetting {failed}")
            assert await client.retry(failed) == "scheduled"  # revived from its history
            await eventually(lambda: _in_state(client, failed, "failed"), what="failing again")
            await eventually(lambda: bool(receiver.accepted), what="a webhook delivered")
        assert await client.store.sink("app").replay(None) == 0  # none dead: the script ran
        await drain(settings)
    finally:
        await redis.aclose()
        await receiver.stop()
    assert await _scripts_run(target.node_urls) == set(SCRIPT_NAMES)
    states = {job.id: job.state for job in done}
    assert [states[i] for i in ran] == ["succeeded"] * 3
    assert states[held] == states[later] == states[chosen] == states["old1"] == "succeeded"
    assert was_parked and states[far] == "succeeded"
    assert states[failed] == "failed"
    failures = await pg.job_history(failed)
    assert [h["to_state"] for h in failures][-3:] == ["scheduled", "running", "failed"]
    assert failures[-3]["detail"].get("revived") is True
    assert [h["to_state"] for h in await pg.job_history(gone)][-2:] == ["cancelled", "deleted"]
    assert [h["to_state"] for h in await pg.job_history(long)] == [
        "scheduled", "running", "succeeded"
    ]  # fmt: skip
    assert [(h["to_state"], h["daemon"]) for h in await pg.job_history(orphan)][:3] == [
        ("scheduled", client.origin), ("running", DEAD_DAEMON), ("retrying", running.daemon.id)
    ]  # fmt: skip
    assert states[orphan] == "succeeded"
    assert (reused.created, reused.state) == (False, "succeeded")


DEAD_DAEMON = "daemon:gone"
SINK_SECRET = "a-secret-for-the-cluster-sink"


async def _claimed_by_a_dead_daemon(client: Client) -> str:
    """A job claimed by a daemon that died at once: its lease runs out in 0.3 s."""
    job_id = await client.enqueue("noted_sleep", ["orphan", 1])
    now = client.clock.now_ms()
    claimed = await client.store.claim_due(now, {"async": 1}, DEAD_DAEMON, now + 300)
    assert [job.id for job in claimed.jobs] == [job_id]
    return job_id


async def _older_layout_job(redis: Redis, keys: Keys) -> None:
    """A waiting job written by a runner with full field names (see store/redis/upgrade.py)."""
    now = str(int(time.time() * 1000))
    old: dict[Any, Any] = {
        "id": "old1", "task": "echo", "kind": "async", "args": "[7]", "kwargs": "{}",
        "due_at": now, "state": "scheduled", "attempt": "0", "max_attempts": "1",
        "seq": "1", "created_at": now, "updated_at": now,
    }  # fmt: skip
    await redis.hset(keys.job("old1"), mapping=old)
    await redis.zadd(keys.due("async"), {"old1": int(now)})


async def _reused_once_forgotten(client: Client, job_id: str) -> EnqueueResult:
    """Enqueue the chosen id again once Redis forgot its job: only the retired ids,
    filled by the daemon, can refuse it then."""
    await eventually(client.store.retired_filled, what="the retired ids filled")
    await eventually(lambda: _forgotten(client, job_id), what=f"Redis forgetting {job_id}")
    return await client.enqueue_result("echo", [7], job_id=job_id)


async def _forgotten(client: Client, job_id: str) -> bool:
    return not await client.store.job_exists(job_id)


async def _in_state(client: Client, job_id: str, state: str) -> bool:
    return (await client.get(job_id)).state == state


async def _scripts_run(urls: list[str]) -> set[str]:
    """The scripts the nodes ran, from their slowlogs (every command, kept by the
    fixture): EVALSHA names a script by the SHA1 of its source."""
    names = {hashlib.sha1(script_source(n).encode()).hexdigest(): n for n in SCRIPT_NAMES}
    entries = []
    for url in urls:
        admin = Redis.from_url(url)
        try:
            entries += await admin.slowlog_get(-1)
        finally:
            await admin.aclose()
        assert len(entries) < SLOWLOG_LEN, "the slowlog filled up: raise SLOWLOG_LEN"
    run = set()
    for entry in entries:
        command = entry["command"].split()
        if command[0].upper() in (b"EVAL", b"EVAL_RO", b"EVALSHA_RO"):
            raise AssertionError(f"a script ran without its registered SHA: {entry}")
        if command[0].upper() == b"EVALSHA":
            run.add(names[command[1].decode()])
    return run


async def _cron_ran(pg: PgStore) -> bool:
    return bool(await pg.pool.fetchval(
        "SELECT count(*) FROM runner_jobs WHERE id LIKE 'cron:tick:%' AND state = 'succeeded'"
    ))  # fmt: skip


async def _all_ended(client: Client, ids: list[str]) -> list[JobInfo] | None:
    jobs = [await client.get(job_id) for job_id in ids]
    ended = all(job.state in ("succeeded", "failed") for job in jobs)
    return jobs if ended else None
