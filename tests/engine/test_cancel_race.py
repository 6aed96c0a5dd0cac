"""A cancel message read in the same loop turn as the claim that started the job:
the job's executor slot still comes back, whatever its kind."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from runner.config import Settings
from runner.daemon import Daemon
from runner.jobs import ClaimedJob
from runner.tasks import TaskRegistry
from tests.conftest import TEST_TASKS


class _NoStore:
    """The daemon's connections, never used by what this test calls."""

    redis_store: Any = None
    pg_store: Any = None


async def test_a_cancel_right_after_the_claim_gives_the_slot_back() -> None:
    settings = Settings(
        async_concurrency=1, io_threads=1, cpu_processes=1, tasks=TEST_TASKS, source="tests"
    )
    daemon = Daemon(settings, TaskRegistry.from_settings(settings), _NoStore())  # type: ignore[arg-type]
    await daemon.cpu_pool().start()
    try:
        for kind, task in (("async", "sleep_async"), ("io", "sleep_io"), ("cpu", "burn_cpu")):
            executor = daemon.executors[kind]
            job = ClaimedJob(f"j-{kind}", task, kind, 1, 1, "[0.5]", "{}", 0)
            daemon._start_job(job)  # what the pump does with a claim
            message = orjson.dumps([job.id, daemon.id, 1]).decode()
            daemon._cancel_requested(message)  # read in the same turn
            assert job.id not in daemon.active
            for _ in range(100):  # the io thread and cpu worker take their time
                if executor.capacity() == 1:
                    break
                await asyncio.sleep(0.05)
            assert executor.capacity() == 1, kind
        # Another daemon's cancel, or one for another attempt, is not ours to act on.
        job = ClaimedJob("mine", "sleep_async", "async", 2, 3, "[0.01]", "{}", 0)
        daemon._start_job(job)
        daemon._cancel_requested(orjson.dumps([job.id, "other", 2]).decode())
        daemon._cancel_requested(orjson.dumps([job.id, daemon.id, 1]).decode())
        daemon._cancel_requested("not json")
        assert job.id in daemon.active
    finally:
        await daemon.cpu_pool().close(wait=False)
