"""The Lua scripts on a Redis Cluster node.

A job's keys are named inside the scripts from the {prefix} key they are given:
claim, reap and release take ids out of a sorted set, and a held job's set is
named by its task, so those keys cannot be listed in KEYS beforehand. Every key
carries the same {prefix} hash tag, so all of them live in one slot, the slot of
the keys that are declared: a cluster node runs such a script. This runs every
kind of job, the operator's requests and a cron tick on a cluster-mode Valkey.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from runner.client import Client, JobInfo
from runner.config import CronSettings, Settings
from runner.embedded import _valkey_binary, free_port
from runner.store.pg_store import PgStore
from tests.engine.harness import Running, drain
from tests.waiting import eventually


@pytest.fixture
async def cluster_url(tmp_path: Path) -> AsyncIterator[str]:
    """A one-node Valkey cluster serving every slot."""
    port = free_port()
    args = [str(_valkey_binary()), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(tmp_path), "--save", "", "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(free_port())]  # fmt: skip  # not port + 10000: past 65535
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
    cluster_url: str, make_settings: Callable[..., Settings], pg: PgStore
) -> None:
    """async, io, cpu, failing and retried jobs, pause/resume of a task (its held set),
    update, cancel, delete and retry requests, and a cron tick: each script ran on the
    cluster node and every job reached the state it should."""
    cron = {"tick": CronSettings(name="tick", schedule="* * * * * *", task="noop")}
    settings = make_settings(redis_url=cluster_url, cron=cron)
    redis = Redis.from_url(cluster_url, decode_responses=True)
    client = Client(settings, redis, pg)
    try:
        ran = [
            await client.enqueue("echo", [1]),
            await client.enqueue("sleep_io", [0.01]),
            await client.enqueue("burn_cpu", [0.01]),
        ]
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
        async with Running(settings):
            await eventually(lambda: _cron_ran(pg), what="a cron tick run")
            await client.resume_task("echo")
            done = await eventually(lambda: _all_ended(client, [*ran, failed, held, later]))
        await client.retry(failed)
        await drain(settings)
    finally:
        await redis.aclose()
    states = {job.id: job.state for job in done}
    assert [states[i] for i in ran] == ["succeeded"] * 3
    assert states[held] == states[later] == "succeeded"
    assert states[failed] == "failed"
    history = await pg.job_history(failed)
    assert [h["to_state"] for h in history][-3:] == ["scheduled", "running", "failed"]
    assert [h["to_state"] for h in await pg.job_history(gone)][-2:] == ["cancelled", "deleted"]


async def _cron_ran(pg: PgStore) -> bool:
    return bool(await pg.pool.fetchval(
        "SELECT count(*) FROM runner_jobs WHERE id LIKE 'cron:tick:%' AND state = 'succeeded'"
    ))  # fmt: skip


async def _all_ended(client: Client, ids: list[str]) -> list[JobInfo] | None:
    jobs = [await client.get(job_id) for job_id in ids]
    ended = all(job.state in ("succeeded", "failed") for job in jobs)
    return jobs if ended else None
