"""Parking at its edges: retries that reach beyond the horizon, requests a parked job
refuses, and rows Redis will not take back.

Real Redis and PostgreSQL. What it pins: a job that waits far ahead waits in
PostgreSQL whatever sent it there (an enqueue, an update, a retry's backoff) and
comes back in the state it waited in; a request is judged on the parked job's own
state before anything moves; and rows that cannot go back (a key of another type
holds the job's name) never hold up the rows behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.daemon.promoter import Promoter
from runner.daemon.retired_ids import RetiredIds
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.store.parked import DAY_S, HORIZON_S, parking_at


async def parked(pg: PgStore) -> dict[str, dict[str, Any]]:
    rows = await pg.pool.fetch("SELECT * FROM runner_parked_jobs ORDER BY id")
    return {row["id"]: dict(row) for row in rows}


async def retry_far(client: Client, job_id: str, backoff_s: float) -> None:
    """Claim the job and end its attempt as the finisher does for a failure retried
    after `backoff_s`: one finish call, the job back in the Redis schedule, retrying."""
    store = client.store
    now = client.clock.now_ms()
    (job,) = (await store.claim_due(now, {"async": 1}, "d1", now + 60_000)).jobs
    assert job.id == job_id
    due = now + int(backoff_s * 1000)
    outcome = Outcome(job_id, job.attempt, job.claim, "retry_later", due, error="boom")
    assert await store.finish(now, "d1", [outcome]) == [1]


async def test_a_retry_beyond_the_horizon_is_parked_and_comes_back_retrying(
    parking_client: Client, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """The promoter's scan finds a retry whose backoff reaches beyond the horizon in the
    Redis schedule and parks it (a chosen id stays retired meanwhile); once due within
    the horizon it is put back as it waited: retrying, at its seq and attempt."""
    await RetiredIds(parking_client.store, pg, parking_client.clock).fill()
    job_id = await parking_client.enqueue("echo", ["x"], job_id="far-retry")
    near = await parking_client.enqueue("echo", ["y"], delay=HORIZON_S / 2)
    await retry_far(parking_client, job_id, backoff_s=DAY_S)
    await Promoter(parking_at(parking_client, 0)).scan()
    assert not await parking_client.store.job_exists(job_id)
    assert await redis.zscore(keys.due("async"), job_id) is None
    assert await parking_client.store.job_exists(near)  # within the horizon: stays
    rows = await parked(pg)
    assert [(i, r["state"], r["seq"], r["attempt"]) for i, r in rows.items()] == [
        (job_id, "retrying", 3, 1)
    ]
    assert await redis.zscore(keys.retired, job_id) is not None  # its chosen id stays taken
    again = await parking_client.enqueue_result("echo", ["z"], job_id=job_id)
    assert not again.created and not await parking_client.store.job_exists(job_id)
    assert await parking_at(parking_client, DAY_S).promote_due(100) == 1
    record = await parking_client.store.get_job(job_id)
    assert record is not None
    assert (record.state, record.seq, record.attempt, record.args) == ("retrying", 3, 1, ["x"])
    assert await parked(pg) == {}


async def test_far_jobs_left_in_redis_do_not_hide_the_parkable_ones_behind(
    make_settings: Callable[..., Settings], parking_client: Client, pg: PgStore, redis: Redis
) -> None:
    """Far jobs in Redis (enqueued while parking was off) are parked by the scan, except
    cron ticks (their overlap guard looks for them in Redis). More than a batch of
    ticks come first in due order: the others behind them are still parked."""
    unparked = Client(make_settings(park_horizon=None), redis, pg)
    ticks = [
        replace(unparked.new_job("echo", [n], delay=DAY_S + n), extra={"cron": "c"})
        for n in range(25)
    ]
    plain = [unparked.new_job("echo", [n], delay=2 * DAY_S + n) for n in range(5)]
    await unparked.enqueue_many([*ticks, *plain])
    await Promoter(parking_at(parking_client, 0), batch=10).scan()
    assert set(await parked(pg)) == {job.id for job in plain}
    assert all([await parking_client.store.job_exists(tick.id) for tick in ticks])


async def test_a_refused_request_leaves_a_parked_job_parked(
    parking_client: Client, pg: PgStore
) -> None:
    """Resume of a parked scheduled job and retry of one that is not failed are refused
    by the state it waits in, and it stays in PostgreSQL, not brought into Redis; an
    accepted request in the same batch is applied as before."""
    ids = [await parking_client.enqueue("echo", [n], delay=DAY_S, job_id=f"p{n}") for n in range(3)]
    results = await parking_client.request("resume", ids[:2])
    assert [(r.ok, r.state) for r in results] == [(False, "scheduled")] * 2
    assert "cannot resume job p0: it is scheduled" in results[0].message
    [retried] = await parking_client.request("retry", ids[2:])
    assert (retried.ok, retried.state) == (False, "scheduled")
    assert set(await parked(pg)) == set(ids)
    assert not any([await parking_client.store.job_exists(i) for i in ids])
    mixed = await parking_client.request("pause", ids[:1])
    assert [(r.ok, r.state) for r in mixed] == [(True, "paused")]
    assert set(await parked(pg)) == set(ids[1:])


async def test_rows_redis_will_not_take_back_do_not_stall_the_promoter(
    parking_client: Client, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """1,000 parked rows whose jobs' names are held in Redis by keys of another type come
    first in due order: they stay parked (the jobs are not lost) and are reported, and
    the valid rows behind them are still put back in the same scan."""
    blocked = [parking_client.new_job("echo", [n], delay=DAY_S + n) for n in range(1000)]
    valid = [parking_client.new_job("echo", [n], delay=DAY_S + 2000 + n) for n in range(5)]
    await parking_client.enqueue_many([*blocked, *valid])
    for job in blocked:
        await redis.set(keys.job(job.id), "not a hash")
    with structlog.testing.capture_logs() as logs:
        moved = await Promoter(parking_at(parking_client, DAY_S + 3000)).scan()
    assert moved == 5
    assert all([await parking_client.store.job_exists(job.id) for job in valid])
    assert set(await parked(pg)) == {job.id for job in blocked}
    [warning] = [line for line in logs if line["log_level"] == "warning"]
    assert warning["jobs"] == 1000 and blocked[0].id in warning["job_ids"]


async def test_a_job_that_came_to_depend_on_a_parked_one_is_released_once_it_is_back(
    parking_client: Client, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """A dependency parked in PostgreSQL has no hash in Redis, and the enqueue of a job
    that depends on it writes none (a stub would answer requests as malformed); once
    promoted, it knows its dependents, and its end releases them."""
    far = await parking_client.enqueue("echo", ["far"], delay=DAY_S)
    waiting = await parking_client.enqueue("echo", ["after"], depends_on=[far])
    assert not await parking_client.store.job_exists(far)
    assert (await parking_client.get(waiting)).state == "blocked"
    assert await parking_at(parking_client, DAY_S).promote_due(100) == 1
    assert await redis.hget(keys.job(far), "dependents") == "1"
    await redis.zadd(keys.due("async"), {far: 0})  # due now, as a day later
    now = parking_client.clock.now_ms()
    (job,) = (await parking_client.store.claim_due(now, {"async": 5}, "d1", now + 60_000)).jobs
    assert job.id == far
    outcome = Outcome(far, job.attempt, job.claim, "succeed")
    assert await parking_client.store.finish(now, "d1", [outcome]) == [1]
    assert (await parking_client.get(waiting)).state == "scheduled"


async def test_a_job_brought_back_for_a_request_is_not_parked_again_meanwhile(
    parking_client: Client, pg: PgStore
) -> None:
    """A parked job brought back into Redis for a request is still due beyond the
    horizon: a parker's scan a moment later leaves it there (it used to take it out
    again, and the request then missed it), and one a minute later parks it."""
    job_id = await parking_client.enqueue("echo", ["far"], delay=DAY_S)
    assert job_id in await parked(pg)
    back = await parking_at(parking_client, 0).bring_back([job_id], lambda state: True)
    assert back == {job_id: "scheduled"}
    assert await parking_at(parking_client, 0).park_far(100) == 0
    assert await parking_client.store.job_exists(job_id)
    assert await parking_at(parking_client, 61).park_far(100) == 1
    assert not await parking_client.store.job_exists(job_id)
    assert job_id in await parked(pg)
