"""Unique jobs on real Redis: `[tasks.X] unique` keeps duplicates out atomically (20
clients at once make exactly one job), for as long as its mode says, and an enqueue
of a duplicate returns the job that holds the key, as a reused id does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.conftest import TEST_TASKS
from tests.limits.shared import limited_client
from tests.store.parked import DAY_S, HORIZON_S, parking_at

LEASE_MS = 60_000


async def _claim(client: Client) -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": 10}, "d1", now + LEASE_MS)
    return [job.id for job in found.jobs]


async def _end(client: Client, redis: Redis, keys: Keys, job_id: str, action: str) -> None:
    seq, attempt = await redis.hmget(keys.job(job_id), ["q", "n"])
    due = client.clock.now_ms() if action == "retry_later" else None
    outcome = Outcome(job_id, int(str(attempt)), int(str(seq)), action, due)
    assert await client.store.finish(client.clock.now_ms(), "d1", [outcome]) == [1]


async def test_twenty_clients_at_once_make_one_job(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    clients = [limited_client(make_settings, redis, pg, unique="until_done") for _ in range(20)]

    async def fifty(client: Client) -> list[tuple[str, bool]]:
        results = []
        for _ in range(50):
            result = await client.enqueue_result("echo", ["same"])
            results.append((result.id, result.created))
        return results

    every = [r for part in await asyncio.gather(*(fifty(c) for c in clients)) for r in part]
    assert len(every) == 1000
    assert len({job_id for job_id, _ in every}) == 1
    assert sum(created for _, created in every) == 1
    assert len(await redis.zrange(keys.due_all[0], 0, -1)) == 1


@pytest.mark.parametrize(
    ("mode", "lets_in_after"),
    [("queued", "start"), ("running", "first attempt"), ("until_done", "end")],
)
async def test_each_mode_lets_a_new_job_in_when_its_holder_moves_on(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys,
    mode: str, lets_in_after: str,
) -> None:  # fmt: skip
    client = limited_client(make_settings, redis, pg, unique=mode, retries=1)
    first = await client.enqueue("echo", [1])
    assert await client.enqueue("echo", [1]) == first
    assert await _claim(client) == [first]
    started = await client.enqueue("echo", [1])
    assert (started != first) == (lets_in_after == "start")
    if started != first:
        return
    await _end(client, redis, keys, first, "retry_later")  # the first attempt failed
    retrying = await client.enqueue("echo", [1])
    assert (retrying != first) == (lets_in_after == "first attempt")
    if retrying != first:
        return
    assert await _claim(client) == [first]
    await _end(client, redis, keys, first, "succeed")
    assert await client.enqueue("echo", [1]) != first


async def test_a_duration_holds_the_key_for_that_long_whatever_happens(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    client = limited_client(make_settings, redis, pg, unique="for:400")
    first = await client.enqueue("echo", [1])
    await client.cancel(first)
    assert await client.enqueue("echo", [1]) == first
    await asyncio.sleep(0.5)
    assert await client.enqueue("echo", [1]) != first


async def test_a_unique_key_path_and_the_arguments_name_the_key(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    keyed = limited_client(make_settings, redis, pg, unique="queued", unique_key="args.0")
    a = await keyed.enqueue("echo", ["acct-1", "first"])
    assert await keyed.enqueue("echo", ["acct-1", "second"]) == a
    assert await keyed.enqueue("echo", ["acct-2", "first"]) != a
    whole = limited_client(make_settings, redis, pg, unique="queued")
    b = await whole.enqueue("echo", [1, 2])
    assert await whole.enqueue("echo", [1, 2]) == b
    assert await whole.enqueue("echo", [2, 1]) != b


async def test_a_lock_key_of_another_type_is_taken_over(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    client = limited_client(make_settings, redis, pg, unique="queued", unique_key="args.0")
    await redis.hset(f"{keys.due_prefix}unique:echo=x", "junk", "1")
    first = await client.enqueue("echo", ["x"])
    assert await client.enqueue("echo", ["x"]) == first


async def test_a_unique_job_due_far_ahead_stays_in_redis_with_its_key(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    """Beyond the park horizon a job waits in PostgreSQL, but a unique one stays in
    Redis, where the enqueue script checks its key: not parked at enqueue, nor by a
    daemon's parker, and a duplicate is still refused."""
    tasks = dict(TEST_TASKS)
    tasks["echo"] = replace(tasks["echo"], unique="queued")
    client = Client(make_settings(tasks=tasks, park_horizon=HORIZON_S), redis, pg)
    first = await client.enqueue("echo", [1], delay=DAY_S)
    assert await parking_at(client, 0).park_far(100) == 0
    assert await client.store.job_states([first]) == {first: "scheduled"}
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_parked_jobs") == 0
    assert await client.enqueue("echo", [1], delay=DAY_S) == first
