"""Parking: jobs due beyond the horizon wait in PostgreSQL and come back whole.

Real Redis and PostgreSQL. A parked job must look like any other to every verb, its
history must read as one story, and moving it between the stores must neither
lose it nor put it back twice, whoever dies half-way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from runner.cli.render.status import render
from runner.client.client import Client
from runner.client.status import parked_now, status_of
from runner.config.settings import Settings
from runner.store.postgres.parking import ParkedJob, PgParking
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.store.parked import DAY_S, HORIZON_S, parking_at


class Killed(Exception):
    """The mover's process dies here (its transaction ends with its connection)."""


async def parked_rows(pg: PgStore) -> list[dict[str, Any]]:
    rows = await pg.pool.fetch("SELECT id, seq, due_ms FROM runner_parked_jobs ORDER BY id")
    return [dict(row) for row in rows]


async def in_redis(client: Client, job_id: str) -> bool:
    return await client.store.job_exists(job_id)


async def test_a_far_job_waits_in_postgres_and_reads_like_any_other(
    parking_client: Client, pg: PgStore
) -> None:
    near = await parking_client.enqueue("echo", ["soon"], delay=HORIZON_S / 2, job_id="near")
    far = await parking_client.enqueue("echo", ["later"], {"k": 1}, delay=DAY_S, job_id="far")
    assert await in_redis(parking_client, near)
    assert not await in_redis(parking_client, far)
    assert [row["id"] for row in await parked_rows(pg)] == ["far"]
    job = await parking_client.get(far)
    assert (job.state, job.task, job.args, job.kwargs) == ("scheduled", "echo", ["later"], {"k": 1})
    assert job.parked and not (await parking_client.get(near)).parked
    assert job.due_at_ms is not None and job.due_at_ms > time.time() * 1000 + DAY_S * 999
    history = await parking_client.history(far)
    assert [(e["seq"], e["to_state"]) for e in history] == [(1, "scheduled")]
    again = await parking_client.enqueue_result("echo", ["other"], delay=DAY_S, job_id="far")
    assert (again.created, again.state) == (False, "scheduled")
    doc = await status_of(parking_client, {}, parked=await parked_now(parking_client))
    assert doc["parked"]["jobs"] == 1
    assert "parked       1 in Postgres" in render(doc, as_json=False)
    page = await parking_client.list(state="scheduled")  # no recorder here: "near" is not
    assert [row["id"] for row in page.jobs] == ["far"]  # in Postgres yet; "far" was at once


async def test_the_promoter_puts_a_job_back_at_its_seq_without_an_event(
    parking_client: Client, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    job_id = await parking_client.enqueue("echo", ["x"], delay=3 * HORIZON_S)
    early = parking_at(parking_client, ahead_s=HORIZON_S)  # still beyond its horizon
    assert await early.promote_due(100) == 0
    events_before = await redis.xlen(keys.events)
    on_time = parking_at(parking_client, ahead_s=2 * HORIZON_S + 1)
    assert await on_time.promote_due(100) == 1
    assert await parked_rows(pg) == []
    record = await parking_client.store.get_job(job_id)
    assert record is not None
    assert (record.state, record.seq, record.args, record.attempt) == ("scheduled", 1, ["x"], 0)
    score = await redis.zscore(keys.due("async"), job_id)  # the microseconds asked for kept
    due = record.due_at_ms
    assert score is not None and due is not None and due - 1 < score <= due
    assert await redis.xlen(keys.events) == events_before  # being moved is no transition


async def test_every_request_on_a_parked_job_applies_as_in_redis(
    parking_client: Client, pg: PgStore
) -> None:
    ids = {verb: await parking_client.enqueue("echo", [verb], delay=DAY_S, job_id=verb)
           for verb in ("pause", "cancel", "delete")}  # fmt: skip
    assert await parking_client.pause(ids["pause"]) == "paused"
    assert await parking_client.resume(ids["pause"]) == "scheduled"
    assert await parking_client.cancel(ids["cancel"]) == "cancelled"
    assert await parking_client.delete(ids["delete"]) == "deleted"
    assert await parked_rows(pg) == []
    assert (await parking_client.get("cancel")).state == "cancelled"
    missing = await parking_client.request("cancel", ["nobody"])
    assert (missing[0].ok, missing[0].state) == (False, None)


async def test_an_update_moves_a_job_across_the_horizon_both_ways(
    parking_client: Client, pg: PgStore
) -> None:
    job_id = await parking_client.enqueue("echo", ["a"], delay=DAY_S)
    assert await parking_client.update(job_id, delay=HORIZON_S / 4, args=["b"]) == "scheduled"
    assert await in_redis(parking_client, job_id) and await parked_rows(pg) == []
    assert await parking_client.update(job_id, delay=2 * DAY_S) == "scheduled"
    assert not await in_redis(parking_client, job_id)
    [row] = await parked_rows(pg)
    assert row["seq"] == 3  # enqueued, updated, updated: parked at its seq
    back = parking_at(parking_client, ahead_s=2 * DAY_S)
    assert await back.promote_due(100) == 1
    record = await parking_client.store.get_job(job_id)
    assert record is not None and (record.seq, record.args) == (3, ["b"])


async def test_a_mover_that_dies_half_way_loses_and_repeats_nothing(
    parking_client: Client, pg: PgStore
) -> None:
    """The jobs reached Redis but the mover died before deleting the rows: the next
    mover finds them in Redis and only deletes the rows."""
    ids = [await parking_client.enqueue("echo", [n], delay=DAY_S) for n in range(5)]
    dying = parking_at(parking_client, ahead_s=DAY_S)
    pg_parking = PgParking(pg.pool)

    async def put_back_then_die(jobs: list[ParkedJob]) -> set[str]:
        await dying.put_back(jobs)
        raise Killed("mid-batch")

    with pytest.raises(Killed):
        await pg_parking.move_due(2**62, 100, put_back_then_die)
    assert len(await parked_rows(pg)) == 5  # rolled back with the mover
    # One of them ran meanwhile: claimed and cancelled (its seq moved on).
    assert await parking_client.cancel(ids[0]) == "cancelled"
    assert await dying.promote_due(100) == 5
    assert await parked_rows(pg) == []
    states = [(await parking_client.store.get_job(i)) for i in ids]
    assert [(s.state, s.seq) for s in states if s] == [("cancelled", 2)] + [("scheduled", 1)] * 4


async def test_a_row_whose_job_ran_and_was_forgotten_is_never_put_back(
    parking_client: Client, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """A mover died after its jobs ran, finished and left Redis: runner_jobs shows the
    history went on, so the stale row is dropped, not run a second time."""
    job_id = await parking_client.enqueue("echo", ["once"], delay=DAY_S)
    row = await pg.pool.fetchrow("SELECT * FROM runner_parked_jobs WHERE id = $1", job_id)
    await parking_at(parking_client, ahead_s=DAY_S).promote_due(100)
    await pg.pool.execute(
        "INSERT INTO runner_parked_jobs VALUES ($1, $2, $3, $4, $5, $6, $7)", *row.values()
    )
    await pg.pool.execute(
        "UPDATE runner_jobs SET seq = 3, state = 'succeeded' WHERE id = $1", job_id
    )
    await redis.delete(keys.job(job_id))
    await redis.zrem(keys.due("async"), job_id)
    assert await parking_at(parking_client, ahead_s=DAY_S).promote_due(100) == 1
    assert await parked_rows(pg) == []
    assert not await in_redis(parking_client, job_id)


async def test_a_parker_whose_row_a_mover_dropped_leaves_the_job_in_redis(
    parking_client: Client, pg: PgStore
) -> None:
    """A mover found the job in Redis while it was being parked and dropped the row:
    the parker then finds no row and takes nothing out of Redis."""
    job_id = await parking_client.enqueue("echo", ["x"], delay=HORIZON_S / 2)
    [row] = await parking_client.store.parkable([job_id])
    pg_parking = PgParking(pg.pool)
    assert await pg_parking.park([row], {}) == {job_id}
    assert await parking_at(parking_client, ahead_s=0).promote_due(100) == 1
    taken: list[dict[str, int]] = []

    async def take(seqs: dict[str, int]) -> set[str]:
        taken.append(seqs)
        return set(seqs)

    assert await pg_parking.take_out({job_id: row.seq}, take) == set()
    assert taken == [] and await in_redis(parking_client, job_id)


async def test_a_parker_that_dies_after_taking_the_job_out_leaves_it_parked(
    parking_client: Client, pg: PgStore
) -> None:
    job_id = await parking_client.enqueue("echo", ["x"], delay=HORIZON_S / 2)
    [row] = await parking_client.store.parkable([job_id])
    pg_parking = PgParking(pg.pool)
    await pg_parking.park([row], {})

    async def take_then_die(seqs: dict[str, int]) -> set[str]:
        await parking_client.store.take_parked(seqs, "test", 0)
        raise Killed("after take")

    with pytest.raises(Killed):
        await pg_parking.take_out({job_id: row.seq}, take_then_die)
    assert not await in_redis(parking_client, job_id)
    assert len(await parked_rows(pg)) == 1
    assert await parking_at(parking_client, ahead_s=0).promote_due(100) == 1
    record = await parking_client.store.get_job(job_id)
    assert record is not None and (record.state, record.seq) == ("scheduled", 1)


async def test_two_movers_put_each_job_back_once(parking_client: Client, pg: PgStore) -> None:
    jobs = [parking_client.new_job("echo", [n], delay=DAY_S + n) for n in range(3000)]
    await parking_client.enqueue_many(jobs)
    assert len(await parked_rows(pg)) == 3000
    movers = [parking_at(parking_client, ahead_s=2 * DAY_S) for _ in range(2)]
    done = [0, 0]

    async def drain(n: int) -> None:
        while (count := await movers[n].promote_due(200)) > 0:
            done[n] += count

    await asyncio.gather(drain(0), drain(1))
    assert sum(done) == 3000 and min(done) > 0
    assert await parked_rows(pg) == []
    store: RedisStore = parking_client.store
    assert await store.redis.zcard(store.keys.due("async")) == 3000


async def test_postgres_out_of_reach_sends_far_jobs_to_redis(
    make_settings: Callable[..., Settings], redis: Redis
) -> None:
    unreachable = "postgresql://runner@127.0.0.1:1/nowhere"
    client = Client(make_settings(park_horizon=HORIZON_S), redis, database_url=unreachable)
    job_id = await client.enqueue("echo", [], delay=DAY_S)
    assert await in_redis(client, job_id)
    # An update beyond the horizon is applied; the job just stays in Redis.
    assert await client.update(job_id, delay=2 * DAY_S, args=[1]) == "scheduled"
    assert await in_redis(client, job_id)
