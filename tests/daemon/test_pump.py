"""The pump's timing and sharing: woken early by a sooner job, one run per job across daemons."""

from __future__ import annotations

import asyncio
from collections import Counter

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from tests.daemon.harness import Running, drain, history, start_ms
from tests.waiting import eventually


async def test_a_sooner_job_wakes_a_sleeping_pump(
    client: Client, settings: Settings, pg: PgStore
) -> None:
    """With the pump asleep (a job half an hour away; unwoken it would look again only after
    its 5 s safety poll), a job due in 200 ms starts within a second of its time: the
    message woke it. Finer timing is make bench's."""
    await client.enqueue("echo", delay=1800)
    async with Running(settings) as running:
        pump = running.daemon.pump
        await eventually(lambda: pump.sleeping_until, what="the pump falling asleep")
        job_id = await client.enqueue("echo", delay=0.2)
        job = await client.wait(job_id, timeout=5)
        assert job.state == "succeeded"
    events = await history(pg, job_id)
    started = next(e for e in events if e["to_state"] == "running")
    assert 0 <= start_ms(started) - (events[0]["detail"]["due_at"] - 1) < 1000  # ms, rounded up


async def test_two_daemons_share_the_work_and_run_each_job_once(
    client: Client, settings: Settings, pg: PgStore
) -> None:
    """Two daemons on one prefix: every job runs exactly once, and both take part."""
    ids = [await client.enqueue("sleep_io", [0.02]) for _ in range(200)]
    first, second = await asyncio.gather(drain(settings), drain(settings))
    rows = await pg.pool.fetch(
        "SELECT job_id, daemon FROM runner_job_events WHERE to_state = 'running'"
    )
    assert Counter(row["job_id"] for row in rows) == Counter(ids)
    assert {row["daemon"] for row in rows} == {first.id, second.id}
