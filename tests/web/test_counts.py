"""The kept job counts of GET /api/status: counted once, then refreshed in the
background when stale, never on a reader's time, and kept through a failure."""

from __future__ import annotations

import asyncio

import pytest

from runner.errors import StoreUnavailable
from runner.web.counts import DUTY, Counts, TaskCounts


class Counter:
    """A count that takes `took` seconds of a fake monotonic clock and returns the
    next answer (or raises it)."""

    def __init__(self, *answers: Counts | Exception, took: float = 0.1) -> None:
        self.answers = list(answers)
        self.now = 0.0
        self.took = took
        self.calls = 0

    async def count(self) -> Counts:
        self.calls += 1
        self.now += self.took
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_first_read_waits_then_stale_counts_refresh_in_the_background() -> None:
    """Fresh counts are served as they are; past DUTY x the counting time, the reader
    gets the old counts at once and the next one the new."""
    counter = Counter({"echo": {"succeeded": 1}}, {"echo": {"succeeded": 2}})
    counts = TaskCounts(counter.count, wall_clock=lambda: 1000.0, monotonic=lambda: counter.now)
    assert await counts.get() == ({"echo": {"succeeded": 1}}, 1000.0)
    assert (await counts.get())[0] == {"echo": {"succeeded": 1}} and counter.calls == 1
    counter.now += DUTY * 0.1 + 0.01
    assert (await counts.get())[0] == {"echo": {"succeeded": 1}}  # stale, served at once
    await _settle()
    assert (await counts.get())[0] == {"echo": {"succeeded": 2}} and counter.calls == 2
    await counts.close()


async def test_a_failed_refresh_keeps_the_last_counts() -> None:
    """Postgres down during a refresh: the last counts stay; the next stale read retries."""
    counter = Counter({"a": {"failed": 1}}, StoreUnavailable("down", "postgres"), {"a": {}})
    counts = TaskCounts(counter.count, monotonic=lambda: counter.now)
    await counts.get()
    counter.now += 100
    await counts.get()
    await _settle()
    assert (await counts.get())[0] == {"a": {"failed": 1}}
    await _settle()
    assert (await counts.get())[0] == {"a": {}} and counter.calls == 3
    await counts.close()


async def test_the_first_count_failing_is_the_readers_error() -> None:
    """With nothing counted yet, the error reaches the request (a 503 there)."""
    counts = TaskCounts(Counter(StoreUnavailable("down", "postgres")).count)
    with pytest.raises(StoreUnavailable):
        await counts.get()
    await counts.close()
