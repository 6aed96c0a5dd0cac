"""The Python client: validation before anything reaches Redis, reads, idempotent ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from runner.client.client import Client
from runner.config.settings import Settings
from runner.errors import JobNotFound, PayloadError, UnknownTask, UsageError
from runner.store.postgres.store import PgStore
from tests.daemon.harness import drain


async def _stored(client: Client, pg: PgStore) -> tuple[list[str], int]:
    """Every Redis key under the test's prefix, and the jobs Postgres holds."""
    keys = sorted([key async for key in client.redis.scan_iter(f"{client.store.keys.base}*")])
    return keys, await pg.pool.fetchval("SELECT count(*) FROM runner_jobs")


async def test_bad_requests_are_refused_with_a_reason(client: Client, pg: PgStore) -> None:
    """Unknown tasks, non-JSON arguments and naive times never reach Redis (or Postgres)."""
    before = await _stored(client, pg)
    with pytest.raises(UnknownTask, match=r"unknown task 'nope'.*declared: bad_result"):
        await client.enqueue("nope")
    with pytest.raises(PayloadError, match="args must be JSON-serialisable"):
        await client.enqueue("echo", [object()])
    with pytest.raises(PayloadError, match="args must be a list"):
        await client.enqueue("echo", "abc")
    with pytest.raises(UsageError, match="timezone-aware"):
        await client.enqueue("echo", at=datetime(2030, 1, 1))  # the point of the test
    with pytest.raises(UsageError, match="delay must be >= 0"):
        await client.enqueue("echo", delay=-1)
    with pytest.raises(UsageError, match="job id must be"):
        await client.enqueue("echo", job_id="has space")
    with pytest.raises(JobNotFound):
        await client.get("never-enqueued")
    assert await _stored(client, pg) == before
    await client.enqueue("echo")  # the check sees a request that does reach the stores
    assert await _stored(client, pg) != before


async def test_enqueue_with_an_id_is_idempotent(client: Client) -> None:
    """The same id twice is one job; the second call changes nothing."""
    first = await client.enqueue("echo", [1], job_id="report-2030-01-01", delay=60)
    second = await client.enqueue("echo", [2], job_id="report-2030-01-01")
    assert first == second == "report-2030-01-01"
    job = await client.get(first)
    assert (job.state, job.args) == ("scheduled", [1])


async def test_at_and_delay_set_the_due_time(client: Client) -> None:
    """`at` is an absolute time; `delay` accepts seconds or a timedelta."""
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    job = await client.get(await client.enqueue("echo", at=at))
    assert job.due_at_ms == int(at.timestamp() * 1000)
    before = client.clock.now_ms()
    later_id = await client.enqueue("echo", delay=timedelta(minutes=5))
    after = client.clock.now_ms()
    later = await client.get(later_id)
    assert later.due_at_ms is not None
    assert before + 300_000 <= later.due_at_ms <= after + 300_000 + 1  # ms rounded up
    seconds = await client.get(await client.enqueue("echo", delay=90))
    assert seconds.due_at_ms is not None
    assert after + 90_000 <= seconds.due_at_ms <= client.clock.now_ms() + 90_000 + 1


async def test_wait_returns_the_finished_job_and_get_falls_back_to_postgres(
    client: Client, settings: Settings, store: object
) -> None:
    """wait() returns once the job is terminal; after Redis forgets it, Postgres answers."""
    job_id = await client.enqueue("echo", ["x"])
    waiter = asyncio.create_task(client.wait(job_id, timeout=20))
    await drain(settings)
    job = await waiter
    assert (job.state, job.result) == ("succeeded", {"args": ["x"], "kwargs": {}})
    await client.redis.delete(client.store.keys.job(job_id))
    from_pg = await client.get(job_id)
    assert (from_pg.state, from_pg.result, from_pg.task) == ("succeeded", job.result, "echo")
    with pytest.raises(TimeoutError, match="still scheduled"):
        await client.wait(await client.enqueue("echo", delay=60), timeout=0.1)
