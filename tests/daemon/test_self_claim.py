"""An io thread whose job ends claims its own next job (runner/daemon/self_claim.py),
on a real daemon process with one io thread: that job is the loop's as any other. A
cancel stops it (its result dropped, the job cancelled), its timeout fails it, its
lines are logged, and a job the thread cannot run is failed by the loop, not lost.

With one thread busy, the pump has no free slot to claim with: the job after the
first one can only have been claimed by the thread (the daemon says so at debug).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, wait_for_history

SECTIONS: dict[str, dict[str, Any]] = {
    "log": {"level": "debug"},
    "pools": {"io": 1},
    "tasks__slow_io": {"target": "tests.tasks:sleep_io", "kind": "io", "timeout": "1s"},
    "tasks__noted_io": {"target": "tests.tasks:noted_sleep_io", "kind": "io"},
}


def _line(event: str, job_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line.get("event") == event and line.get("job_id") == job_id


async def _daemon(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], redis: Redis,
    pg: PgStore,
) -> tuple[DaemonProcess, Client]:  # fmt: skip
    config = daemon_config(**SECTIONS)
    daemon = spawn(config)
    daemon.wait_ready()
    return daemon, Client(load_settings(config, env={}), redis, pg)


async def test_a_job_its_thread_claimed_can_be_cancelled(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], redis: Redis,
    pg: PgStore,
) -> None:  # fmt: skip
    daemon, client = await _daemon(daemon_config, spawn, redis, pg)
    first = await client.enqueue("noted_io", ["first", 300])
    second = await client.enqueue("noted_io", ["second", 3000])
    daemon.wait_for(_line("job claimed by its io thread", second), timeout=10)
    daemon.wait_for(_line("job started", second), timeout=5)
    assert await client.cancel(second) == "cancelled"
    daemon.wait_for(_line("job cancelled by request", second), timeout=5)
    history, _ = await wait_for_history(pg, second, "cancelled")
    assert [e["to_state"] for e in history] == ["scheduled", "running", "cancelled"]
    assert not daemon.events("job succeeded")[1:]  # only the first one succeeded
    assert daemon.events("job succeeded")[0]["job_id"] == first


async def test_a_job_its_thread_claimed_times_out_and_logs_as_any_other(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], redis: Redis,
    pg: PgStore,
) -> None:  # fmt: skip
    daemon, client = await _daemon(daemon_config, spawn, redis, pg)
    first = await client.enqueue("noted_io", ["first", 200])
    late = await client.enqueue("slow_io", [3])
    daemon.wait_for(_line("job claimed by its io thread", late), timeout=10)
    failed = daemon.wait_for(_line("job failed", late), timeout=10)
    assert "ran past its timeout of 1s" in failed["error"]
    assert 900 <= failed["duration_ms"] < 2500
    history, _ = await wait_for_history(pg, late, "failed")
    assert [e["to_state"] for e in history] == ["scheduled", "running", "failed"]
    started = daemon.events("job started")
    assert [line["job_id"] for line in started] == [first, late]
    assert {"task", "attempt", "state", "ts", "level"} <= set(started[1])


async def test_a_job_its_thread_cannot_run_is_failed_by_the_loop(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], redis: Redis,
    pg: PgStore,
) -> None:  # fmt: skip
    """Arguments that do not decode: the thread hands the job to the loop's start,
    which fails it saying why; the thread goes on with the next one."""
    daemon, client = await _daemon(daemon_config, spawn, redis, pg)
    await client.enqueue("noted_io", ["first", 300])
    broken = await client.enqueue("noted_io", ["broken", 0])
    await redis.hset(client.store.keys.job(broken), "a", "[not json")
    after = await client.enqueue("noted_io", ["after", 0])
    failed = daemon.wait_for(_line("job failed", broken), timeout=10)
    assert "not valid JSON" in failed["error"]
    await wait_for_history(pg, after, "succeeded")
