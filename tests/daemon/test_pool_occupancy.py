"""Why work waits: a daemon whose io threads are all held by jobs past their timeout
says so in `runner status` (per daemon and kind: in use, free, held, the oldest
holder) and in its log, once the pool has had no free slot for `warn_full_after`
while jobs are due."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from tests.daemon.process import DaemonProcess, cli
from tests.waiting import eventually


async def test_threads_held_past_a_timeout_are_shown_and_a_full_pool_is_logged(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], redis: Redis
) -> None:
    """Two io jobs that outlive their 0.5 s timeout hold both threads; a third waits.
    status names both held threads and the oldest job; the log warns within a few
    seconds of the 1 s threshold, with the figures and a hint."""
    config = daemon_config(
        pools={"io": 2, "warn_full_after": "1s"},
        tasks__stuck={"target": "tests.tasks:sleep_io", "kind": "io", "timeout": "500ms"},
    )
    daemon = spawn(config)
    daemon.wait_ready()
    client = Client(load_settings(config, env={}), redis)
    stuck = [await client.enqueue("stuck", [20], job_id=f"stuck-{n}") for n in range(2)]
    waiting = await client.enqueue("stuck", [0], job_id="waiting")

    def io_pool() -> dict[str, object] | None:
        done = cli("status", "--json", config=config)
        details = json.loads(done.stdout)["daemon_details"]
        pool: dict[str, object] = details[0]["pools"]["io"] if details else {}
        return pool if pool.get("held_by_timed_out") == 2 else None

    pool = await eventually(lambda: asyncio.to_thread(io_pool), timeout=15, what="2 held threads")
    assert (pool["in_use"], pool["free"]) == (2, 0)
    oldest = pool["oldest_held"]
    assert isinstance(oldest, dict) and oldest["job_id"] in stuck and oldest["age_ms"] >= 0
    text = await asyncio.to_thread(cli, "status", config=config)
    assert "io 2 in use, 0 free (2 held by timed-out jobs; the oldest, job stuck-" in text.stdout
    warning = await asyncio.to_thread(
        daemon.wait_for, lambda line: line.get("event") == "io pool full while jobs are due", 15
    )
    assert (warning["level"], warning["in_use"], warning["due"]) == ("warning", 2, 1)
    assert warning["held_by_timed_out"] == 2 and warning["oldest_held_job_id"] in stuck
    assert "past their timeout" in warning["hint"]
    assert (await client.get(waiting)).state == "scheduled"  # it waits, and now we know why
