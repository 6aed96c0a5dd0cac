"""Cancelling a running job reaches the daemon that runs it: async work is cancelled,
a cpu job's worker is killed and replaced (the pool keeps its size and runs the next
job), an io job's result is dropped; the job ends cancelled, never succeeded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from tests.daemon.process import DaemonProcess, wait_for_history

TASKS = {
    "tasks__sleep_async": {"target": "tests.tasks:sleep_async", "kind": "async"},
    "tasks__burn_cpu": {"target": "tests.tasks:burn_cpu", "kind": "cpu"},
}


async def _running(redis: Redis, keys: Keys, job_id: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while await redis.hget(keys.job(job_id), stored("state")) != "running":
        assert time.monotonic() < deadline, f"{job_id} never started"
        await asyncio.sleep(0.02)


def _cancelled_line(job_id: str, line: dict[str, Any]) -> bool:
    return line.get("event") == "job cancelled by request" and line.get("job_id") == job_id


def _children() -> dict[int, list[int]]:
    """Every process's children, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    return children


def _cpu_workers(daemon: DaemonProcess) -> set[int]:
    """The daemon's cpu worker processes: the children of its forkserver (the child
    of the daemon that has children of its own)."""
    children = _children()
    return {
        worker for server in children.get(daemon.proc.pid, [])
        for worker in children.get(server, [])
    }  # fmt: skip


async def test_cancel_stops_running_work_of_every_kind(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    client: Client,
    redis: Redis,
    keys: Keys,
    pg: PgStore,
) -> None:
    config = daemon_config(pools={"cpu": 1, "io": 1}, **TASKS)
    daemon = spawn(config)
    daemon.wait_ready()
    jobs = {
        "sleep_async": await client.enqueue("sleep_async", [60]),
        "sleep_io": await client.enqueue("sleep_io", [3]),
        "burn_cpu": await client.enqueue("burn_cpu", [60]),
    }
    for job_id in jobs.values():
        await _running(redis, keys, job_id)
    workers = _cpu_workers(daemon)
    assert len(workers) == 1
    for task, job_id in jobs.items():
        assert await client.cancel(job_id) == "cancelled"
        daemon.wait_for(partial(_cancelled_line, job_id), timeout=2)
        assert (await client.get(job_id)).state == "cancelled", task
    # The pool kept its size: the next cpu job starts at once, on a new worker.
    follow = await client.enqueue("burn_cpu", [0.1])
    await client.wait(follow, timeout=10)
    replaced = _cpu_workers(daemon)
    assert len(replaced) == 1 and replaced != workers
    await asyncio.sleep(3.5)  # the io job's thread ends meanwhile: its result is dropped
    for job_id in jobs.values():
        history, _ = await wait_for_history(pg, job_id, "cancelled")
        assert [h["to_state"] for h in history] == ["scheduled", "running", "cancelled"]
        assert (await client.get(job_id)).state == "cancelled"
    assert not daemon.events("job crashed in runner; failing it")
