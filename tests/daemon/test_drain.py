"""`runner run --drain` on a real daemon process: it exits once no work it could run
is left, and says which jobs it leaves waiting for a resume."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.daemon.drain import Drain
from runner.daemon.recorder import Recorder
from runner.store.postgres.store import PgStore
from runner.store.redis.store import RedisStore
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


async def test_the_paused_jobs_are_counted_in_the_history_or_else_in_redis(
    client: Client, store: RedisStore, pg: PgStore, database_url: str
) -> None:
    """Once every transition is written, a drain counts the jobs paused one by one in
    the history (an index read, not a walk over every job hash). Redis counts them
    when the last transitions were not written, when PostgreSQL refuses, and when it
    does not answer in time: a count never holds the exit."""
    await store.ensure_event_group()
    await client.pause(await client.enqueue("noop", delay=600))
    await client.pause_task("echo")
    await client.enqueue("echo")
    now = client.clock.now_ms()  # a claim moves the paused task's due job aside
    await store.claim_due(now, {"async": 5, "io": 0, "cpu": 0}, "d", now + 5000)
    drain = Drain(store, lambda: False, asyncio.Event())
    await asyncio.wait_for(drain.run(), 10)
    out_of_reach = await PgStore.connect(database_url)
    await out_of_reach.close()
    with structlog.testing.capture_logs() as logs:
        await drain.say_what_waits(pg, recorded=False, bound_s=5)  # Redis: 1
        await drain.say_what_waits(pg, recorded=True, bound_s=5)  # the history: 0 so far
        await Recorder(
            store, pg_store=pg, consumer="c", batch_events=100, flush_interval=0.05
        ).drain()
        await drain.say_what_waits(pg, recorded=True, bound_s=5)  # the history: 1
        await drain.say_what_waits(out_of_reach, recorded=True, bound_s=5)  # refused: Redis
        async with pg.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE runner_jobs IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            await drain.say_what_waits(pg, recorded=True, bound_s=0.5)  # no answer: Redis
            assert time.monotonic() - started < 3
    said = [(line["held"], line["paused_jobs"]) for line in logs if "paused_jobs" in line]
    assert said == [({"echo": 1}, n) for n in (1, 0, 1, 1, 1)], logs
    not_counted = [line["event"] for line in logs if "could not be counted in" in line["event"]]
    assert not_counted == [f"drain: the jobs paused one by one could not be counted in {where}"
                           for where in ("PostgreSQL", "PostgreSQL")]  # fmt: skip
