"""A cancel message read in the same loop turn as the claim that started the job:
the job's executor slot still comes back, whatever its kind."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from runner.config.settings import Settings
from runner.daemon.supervisor import Daemon
from runner.jobs import ClaimedJob, Outcome
from runner.tasks import TaskRegistry
from tests.conftest import TEST_TASKS
from tests.store.postgres.test_history import FakeClock
from tests.waiting import eventually


class _NoStore:
    """The daemon's connections, never used by what this test calls."""

    redis_store: Any = None
    pg_store: Any = None
    redis_url = "redis://127.0.0.1:9/0"  # never connected: no source is configured


async def test_a_cancel_right_after_the_claim_gives_the_slot_back() -> None:
    settings = Settings(
        async_concurrency=1, io_threads=1, cpu_processes=1, tasks=TEST_TASKS, source="tests"
    )
    daemon = Daemon(settings, TaskRegistry.from_settings(settings), _NoStore())  # type: ignore[arg-type]
    await daemon.cpu_pool().start()
    try:
        for kind, task in (("async", "sleep_async"), ("io", "sleep_io"), ("cpu", "burn_cpu")):
            executor = daemon.executors[kind]
            job = ClaimedJob(f"j-{kind}", task, kind, 1, 2, 1, "[0.5]", "{}", 0)
            daemon.start_claimed(job)  # what the pump does with a claim
            message = orjson.dumps([job.id, daemon.id, job.claim]).decode()
            daemon._cancel_requested(message)  # read in the same turn
            assert job.id not in daemon.active
            for _ in range(100):  # the io thread and cpu worker take their time
                if executor.capacity() == 1:
                    break
                await asyncio.sleep(0.05)
            assert executor.capacity() == 1, kind
        # Another daemon's cancel, or one for an earlier run, is not ours to act on.
        job = ClaimedJob("mine", "sleep_async", "async", 2, 5, 3, "[0.01]", "{}", 0)
        daemon.start_claimed(job)
        daemon._cancel_requested(orjson.dumps([job.id, "other", 5]).decode())
        daemon._cancel_requested(orjson.dumps([job.id, daemon.id, 3]).decode())
        daemon._cancel_requested("not json")
        assert job.id in daemon.active
    finally:
        await daemon.cpu_pool().close(wait=False)


async def test_a_cancel_after_the_outcome_never_stops_the_next_run() -> None:
    """A run cancelled just after its body ended (its outcome already on its way) is
    not remembered as cancelled: the same job, retried and claimed here again at the
    same attempt, starts and stays active when the first run's outcome is answered."""
    settings = Settings(async_concurrency=2, tasks=TEST_TASKS, source="tests")
    daemon = Daemon(settings, TaskRegistry.from_settings(settings), _NoStore())  # type: ignore[arg-type]
    submitted: list[Outcome] = []
    daemon.finisher.submit = submitted.append  # type: ignore[method-assign,assignment]  # no Redis here
    first = ClaimedJob("j", "echo", "async", 1, 2, 1, '["x"]', "{}", 0)
    daemon.start_claimed(first)
    await eventually(lambda: bool(submitted))  # its body ended: the outcome is submitted
    daemon._cancel_requested(orjson.dumps(["j", daemon.id, first.claim]).decode())
    second = first._replace(claim=first.claim + 3)  # cancel, retry, claim: same attempt
    daemon.start_claimed(second)
    assert daemon.active["j"] is second
    daemon._finished(submitted[:1], [0])  # the first run's outcome, fenced off
    assert daemon.active.get("j") is second
    await eventually(lambda: len(submitted) == 2)
    assert [(o.job_id, o.claim, o.action) for o in submitted] == [
        ("j", first.claim, "succeed"),
        ("j", second.claim, "succeed"),
    ]
    daemon._finished(submitted[1:], [1])
    assert "j" not in daemon.active


async def test_a_held_job_cancelled_as_its_due_time_comes_never_starts() -> None:
    """A job held inside the lead and cancelled by request in the very loop turn its
    due time comes: the stop cancels its hold one turn later, after the hold has seen
    its due time, and still the attempt never begins and its slot comes back."""
    clock = FakeClock(1_800_000_000.0)
    settings = Settings(async_concurrency=1, timer_spin=10.0, tasks=TEST_TASKS, source="tests")
    daemon = Daemon(settings, TaskRegistry.from_settings(settings), _NoStore())  # type: ignore[arg-type]
    daemon.clock = clock
    submitted: list[Outcome] = []
    daemon.finisher.submit = submitted.append  # type: ignore[method-assign,assignment]  # no Redis here
    due_ms = clock.now() * 1000 + 3
    job = ClaimedJob("held", "echo", "async", 1, 2, 1, '["x"]', "{}", due_ms)
    daemon.start_claimed(job)  # held: its due time is 3 ms ahead
    for _ in range(3):
        await asyncio.sleep(0)  # the hold yields each turn (timer_spin: it spins)
    assert daemon.executors["async"].capacity() == 0 and "held" in daemon.active
    clock.moment += 0.004  # its due time comes, and in the same turn its cancel is read
    daemon._cancel_requested(orjson.dumps([job.id, daemon.id, job.claim]).decode())
    for _ in range(5):
        await asyncio.sleep(0)
    assert daemon.executors["async"].capacity() == 1
    assert not daemon._job_tasks and "held" not in daemon.active and submitted == []
