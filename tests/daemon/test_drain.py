"""`runner run --drain` on a real daemon process: it exits once no work it could run
is left, and says which jobs it leaves waiting for a resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, wait_for_history


async def test_drain_exits_naming_the_jobs_held_by_a_paused_task_and_the_paused_ones(
    daemon_config: Callable[..., Path], pg: PgStore
) -> None:
    """Jobs of a paused task and jobs paused one by one cannot run until resumed: the
    drain runs everything else, then exits 0 with a warning that counts them (held
    per task, paused) and says how to resume them."""
    config = daemon_config()
    async with await Client.connect(load_settings(config, {})) as client:
        assert await client.pause_task("echo")
        held = [await client.enqueue("echo", [n]) for n in range(2)]
        paused = await client.enqueue("sleep_io", [0.1], delay=600)
        await client.pause(paused)
        runnable = await client.enqueue("sleep_io", [0.1])
    daemon = DaemonProcess(config, args=["--drain"])
    try:
        assert daemon.wait_exit(timeout=60) == 0, daemon.output()
    finally:
        daemon.stop()
    await wait_for_history(pg, runnable, "succeeded")
    [line] = daemon.events("drained; jobs left waiting for a resume")
    assert line["level"] == "warning"
    assert (line["held"], line["paused_jobs"]) == ({"echo": 2}, 1), line
    assert "runner resume --task echo" in line["hint"] and "runner resume ID" in line["hint"]
    assert not {*held, paused} & {e["job_id"] for e in daemon.events("job started")}
    assert daemon.events("daemon stopped")
