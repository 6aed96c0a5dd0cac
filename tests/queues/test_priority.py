"""Priorities within a queue, on real Redis: among due jobs the higher priority
starts first, and aging bounds how long a flood of urgent jobs holds back a
lower one. Times are passed to the scripts, so each run is exact."""

from __future__ import annotations

from runner.jobs import NewJob
from runner.store import RedisStore

ASYNC_ONLY = {"async": 50, "io": 0, "cpu": 0}


def _job(job_id: str, due_ms: int, priority: int, queue: str = "default") -> NewJob:
    return NewJob(job_id, "echo", "async", "[]", "{}", due_ms, 1, queue=queue, priority=priority)


async def _claim_all(store: RedisStore, now_ms: int, aging_ms: int = 1000) -> list[str]:
    order: list[str] = []
    while True:
        claimed = await store.claim_due(now_ms, ASYNC_ONLY, "d1", now_ms + 60_000, aging_ms)
        if not claimed.jobs:
            return order
        order += [job.id for job in claimed.jobs]


async def test_every_high_job_starts_before_any_low_job_due_with_it(store: RedisStore) -> None:
    """1,000 low and 100 high jobs due at the same moment: claimed 50 at a time, the
    100 high ones come first, whatever order they were enqueued in."""
    due = 1_000_000
    jobs = [_job(f"low-{i}", due, 0) for i in range(1000)]
    jobs[::10] = [_job(f"high-{i}", due, 9) for i in range(100)]  # mixed in, one in ten
    jobs += [_job(f"low-{i}", due, 0) for i in range(1000, 1100)]
    await store.enqueue_many(jobs, "test", due)
    order = await _claim_all(store, due + 1)
    assert len(order) == 1100 and len(set(order)) == 1100
    assert all(job_id.startswith("high-") for job_id in order[:100])


async def test_levels_in_between_keep_their_order(store: RedisStore) -> None:
    """Due together, priorities 9, 5, 1 and 0 start in that order; with equal priority,
    the earlier due time first."""
    due = 2_000_000
    jobs = [_job("p0", due, 0), _job("p5-late", due + 10, 5), _job("p1", due, 1),
            _job("p9", due, 9), _job("p5", due, 5)]  # fmt: skip
    await store.enqueue_many(jobs, "test", due)
    assert await _claim_all(store, due + 20) == ["p9", "p5", "p5-late", "p1", "p0"]


async def test_a_flood_of_urgent_jobs_holds_a_low_one_back_only_within_the_aging_bound(
    store: RedisStore,
) -> None:
    """Every 10 ms ten priority-9 jobs fall due and only five start: the urgent backlog
    grows for ever. A priority-0 job due at t0 still starts, and it is passed over
    only by urgent jobs that fell due less than 9 x aging (900 ms) after it."""
    aging, t0 = 100, 3_000_000
    await store.enqueue_many([_job("low", t0, 0)], "test", t0)
    started_before_low: list[float] = []
    low_started_at = None
    for step in range(400):
        now = t0 - 500 + step * 10
        await store.enqueue_many([_job(f"h-{step}-{i}", now, 9) for i in range(10)], "test", now)
        limits = {"async": 5, "io": 0, "cpu": 0}
        claimed = await store.claim_due(now, limits, "d1", now + 60_000, aging)
        for job in claimed.jobs:
            if job.id == "low":
                low_started_at = now
            elif low_started_at is None:
                started_before_low.append(job.due_at_ms)
        if low_started_at is not None:
            break
    assert low_started_at is not None, "the low job never started"
    assert max(started_before_low) < t0 + 9 * aging
    # The backlog ahead of it was finite: the urgent jobs due before t0 + 900 ms.
    assert low_started_at <= t0 + 2 * (9 * aging + 500)


async def test_priority_survives_a_retry_and_an_update(store: RedisStore) -> None:
    """A retried job goes back to its priority's set; an update moves it to another."""
    due = 4_000_000
    await store.enqueue_many([_job("r", due, 7), _job("plain", due, 0)], "test", due)
    [first] = [j for j in (await store.claim_due(due, ASYNC_ONLY, "d1", due + 60_000)).jobs
               if j.id == "r"]  # fmt: skip
    from runner.jobs import Outcome  # noqa: PLC0415

    await store.finish(due + 1, "d1", [Outcome("r", first.attempt, first.claim, "retry_later",
                                                due_at_ms=due + 5)])  # fmt: skip
    later = [_job("low", due + 5, 0), _job("mid", due + 5, 6), _job("zero", due + 4, 0)]
    await store.enqueue_many(later, "test", due)
    assert (await store.request("update", ["low"], "t", due + 2, {"priority": 5})) == [
        "ok:scheduled"
    ]
    assert await _claim_all(store, due + 10) == ["r", "mid", "low", "zero"]
