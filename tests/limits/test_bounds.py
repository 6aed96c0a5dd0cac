"""Bounded queues on real Redis: `[tasks.X] max_queued = N` refuses an enqueue while N
of the task's jobs wait for their first start, atomically (several clients at once
never pass it), job by job within a batch (never half-written), with the bound and
the task named; a claim, a cancel or a delete makes room, and a caller may wait for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.errors import QueueFull
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.process import cli
from tests.limits.shared import limited_client

LEASE_MS = 60_000


@pytest.fixture
def bounded(make_settings: Callable[..., Settings], redis: Redis, pg: PgStore) -> Client:
    return limited_client(make_settings, redis, pg, max_queued=1000)


def _waiting_key(keys: Keys) -> str:
    return f"{keys.due_prefix}queued:echo"


async def _claim(client: Client, count: int) -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": count}, "d1", now + LEASE_MS)
    return [job.id for job in found.jobs]


async def _events(redis: Redis, keys: Keys) -> int:
    entries: Any = await redis.xrange(keys.events)
    return sum(len(json.loads(fields["e"])) for _, fields in entries)


async def test_two_thousand_from_four_clients_make_a_thousand_and_refuse_the_rest(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    """4 clients, 500 jobs each in batches of 50, at once: exactly 1,000 created, 1,000
    refused each with the task and the bound named; nothing of a refused job is in
    Redis (no hash, no member, no event)."""
    clients = [limited_client(make_settings, redis, pg, max_queued=1000) for _ in range(4)]

    async def five_hundred(client: Client, n: int) -> list[tuple[str, bool, str | None]]:
        got = []
        for start in range(0, 500, 50):
            jobs = [client.new_job("echo", [n, i]) for i in range(start, start + 50)]
            got += [(r.id, r.created, r.refused) for r in await client.enqueue_many_results(jobs)]
        return got

    every = [r for part in await asyncio.gather(*(five_hundred(c, n) for n, c in
                                                   enumerate(clients))) for r in part]  # fmt: skip
    created = [job_id for job_id, made, _ in every if made]
    refused = [(job_id, why) for job_id, made, why in every if not made]
    assert (len(created), len(refused)) == (1000, 1000)
    assert all(why and "task 'echo' is full" in why and "max_queued ([tasks.echo]) is 1000" in why
               for _, why in refused)  # fmt: skip
    assert await redis.zcard(keys.due_all[0]) == 1000
    assert await redis.zcard(_waiting_key(keys)) == 1000
    assert await redis.exists(*(keys.job(job_id) for job_id, _ in refused[:500])) == 0
    assert await _events(redis, keys) == 1000


async def test_a_batch_is_refused_job_by_job_and_a_claim_makes_room(
    bounded: Client, redis: Redis, keys: Keys
) -> None:
    await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(990)])
    results = await bounded.enqueue_many_results([bounded.new_job("echo", [i]) for i in range(20)])
    assert [r.created for r in results] == [True] * 10 + [False] * 10
    assert {r.state for r in results[10:]} == {"refused"}
    with pytest.raises(QueueFull, match=r"max_queued \(\[tasks.echo\]\) is 1000"):
        await bounded.enqueue("echo", ["one more"])
    assert len(await _claim(bounded, 30)) == 30
    assert await redis.zcard(_waiting_key(keys)) == 970
    assert await bounded.enqueue("echo", ["room now"])


async def test_a_cancel_and_a_delete_make_room_a_pause_does_not(
    bounded: Client, redis: Redis, keys: Keys
) -> None:
    ids = await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(1000)])
    [paused] = await bounded.request("pause", ids[:1])
    assert paused.ok
    with pytest.raises(QueueFull):
        await bounded.enqueue("echo", ["still full"])
    assert all(r.ok for r in await bounded.request("cancel", ids[1:3]))
    assert all(r.ok for r in await bounded.request("delete", ids[3:4]))
    assert await redis.zcard(_waiting_key(keys)) == 997
    assert len(await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(3)])) == 3


async def test_an_enqueue_with_a_wait_gets_in_once_room_is_made(bounded: Client) -> None:
    await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(1000)])

    async def claim_later() -> None:
        await asyncio.sleep(0.3)
        await _claim(bounded, 1)

    claiming = asyncio.create_task(claim_later())
    job_id = await bounded.enqueue("echo", ["patient"], wait=5)
    await claiming
    assert (await bounded.get(job_id)).state == "scheduled"
    with pytest.raises(QueueFull):
        await bounded.enqueue("echo", ["impatient"], wait=0.2)


async def test_members_that_no_longer_wait_are_swept_at_the_bound(
    bounded: Client, redis: Redis, keys: Keys
) -> None:
    """A listed job whose hash is gone or that no longer waits (set aside by another
    program) does not hold a place: at the bound, the oldest are checked first."""
    ids = await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(2)])
    await asyncio.sleep(0.01)  # the others are listed later (the list is by enqueue time)
    await bounded.enqueue_many([bounded.new_job("echo", [i]) for i in range(998)])
    await redis.delete(keys.job(ids[0]))
    await redis.hset(keys.job(ids[1]), "s", "failed")
    assert await bounded.enqueue("echo", ["a"]) and await bounded.enqueue("echo", ["b"])
    with pytest.raises(QueueFull):
        await bounded.enqueue("echo", ["c"])


async def test_a_waiting_list_of_another_type_is_set_aside(
    bounded: Client, redis: Redis, keys: Keys
) -> None:
    """Anything in Redis is untrusted: a string where the list should be is moved aside
    (enqueue, claim and cancel go on), and a new list is begun."""
    await redis.set(_waiting_key(keys), "not a sorted set")
    job_id = await bounded.enqueue("echo", [1])
    assert await redis.get(f"{_waiting_key(keys)}:malformed") == "not a sorted set"
    assert await redis.zrange(_waiting_key(keys), 0, -1) == [job_id]
    await redis.set(_waiting_key(keys), "again")
    assert await _claim(bounded, 5) == [job_id]
    second = await bounded.enqueue("echo", [2])
    assert (await bounded.request("cancel", [second]))[0].ok


async def test_a_queue_s_bound_counts_every_task_s_jobs_in_it(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    """`[queues.Q] max_queued` bounds every task's waiting jobs in Q together; another
    queue, and a job sent elsewhere, are not counted."""
    settings = make_settings(queue_limits={"default": 5})
    client = Client(settings, redis, pg)
    await client.enqueue_many([client.new_job("echo", [i]) for i in range(3)])
    await client.enqueue_many([client.new_job("noop") for _ in range(2)])
    with pytest.raises(QueueFull, match=r"queue 'default' is full: 5 of its jobs wait to "
                       r"start and its max_queued \(\[queues.default\]\) is 5"):  # fmt: skip
        await client.enqueue("noop")
    assert await client.enqueue("noop", queue="other")
    assert await redis.zcard(f"{keys.due_prefix}queued") == 5
    assert len(await _claim(client, 2)) == 2
    more = await client.enqueue_many([client.new_job("echo", [9]) for _ in range(2)])
    assert (await client.request("cancel", more[:1]))[0].ok
    assert await redis.zcard(f"{keys.due_prefix}queued") == 4
    assert await client.enqueue("noop")


async def test_a_counted_job_due_far_ahead_stays_in_redis(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    """Its place in the count is in Redis, so it is not parked in PostgreSQL."""
    client = limited_client(make_settings, redis, pg, max_queued=5)
    client.parking.horizon_s = 60.0
    job_id = await client.enqueue("echo", [1], delay=86400)
    assert await redis.exists(keys.job(job_id)) == 1
    assert await redis.zrange(_waiting_key(keys), 0, -1) == [job_id]


async def test_api_answers_429_and_cli_exits_1_naming_the_bound(
    make_settings: Callable[..., Settings],
    redis: Redis,
    pg: PgStore,
    daemon_config: Callable[..., Path],
) -> None:
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    from runner.web.app import make_app  # noqa: PLC0415
    from tests.web.conftest import AUTH, TOKEN  # noqa: PLC0415

    client = limited_client(make_settings, redis, pg, max_queued=2)
    await client.enqueue_many([client.new_job("echo", [i]) for i in range(2)])
    config = daemon_config(tasks__echo={"max_queued": 2})
    done = cli("enqueue", "echo", "--args", "[9]", config=config)
    assert done.returncode == 1, done.stderr
    assert "task 'echo' is full" in done.stderr and "max_queued ([tasks.echo]) is 2" in done.stderr
    assert "Traceback" not in done.stderr
    web = TestClient(TestServer(make_app(client.settings.__class__(
        **{**client.settings.__dict__, "web_token": TOKEN}))))  # fmt: skip
    await web.start_server()
    try:
        one = await web.post("/api/jobs", json={"task": "echo", "args": [1]}, headers=AUTH)
        assert one.status == 429 and "max_queued ([tasks.echo]) is 2" in (await one.json())["error"]
        batch = await web.post(
            "/api/jobs/batch", json={"jobs": [{"task": "echo"}], "wait": "100ms"}, headers=AUTH
        )
        assert batch.status == 429
        assert "max_queued ([tasks.echo]) is 2" in (await batch.json())["jobs"][0]["refused"]
    finally:
        await web.close()
