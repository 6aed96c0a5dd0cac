"""Retired ids: Redis alone refuses a chosen id whose history PostgreSQL keeps, so an
enqueue with an id never needs PostgreSQL (runner/daemon/retired_ids.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.clock import SYSTEM_CLOCK
from runner.config.settings import Settings
from runner.daemon.recorder import Recorder
from runner.daemon.retired_ids import RetiredIds
from runner.errors import StoreUnavailable
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore

UNREACHABLE_PG = "postgresql://runner@127.0.0.1:9/nowhere"


def _offline_client(settings: Settings, redis: Redis) -> Client:
    """A client whose PostgreSQL cannot be reached, as during an outage."""
    return Client(settings, redis, database_url=UNREACHABLE_PG)


async def _run_and_forget(client: Client, store: RedisStore, pg: PgStore, job_id: str) -> None:
    """Claim and succeed the job, record it, and let Redis forget it (its expiry, cut)."""
    now = client.clock.now_ms()
    (job,) = (await store.claim_due(now, {"async": 1}, "d1", now + 60_000)).jobs
    assert job.id == job_id
    await store.finish(now, "d1", [Outcome(job_id, job.attempt, job.claim, "succeed")])
    recorder = Recorder(store, pg_store=pg, consumer="r1", batch_events=100, flush_interval=0.05)
    await store.ensure_event_group()
    await recorder.drain()
    assert await client.redis.pttl(store.keys.job(job_id)) > 0  # given its expiry
    await client.redis.delete(store.keys.job(job_id))  # as the expiry would


async def test_a_forgotten_chosen_id_is_refused_without_postgres(
    client: Client, store: RedisStore, pg: PgStore, redis: Redis, keys: Keys, settings: Settings
) -> None:
    """Once filled, the retired ids alone refuse a chosen id whose job Redis forgot,
    with the state it ended in; PostgreSQL unreachable changes nothing. A generated
    id is not kept (it is random: no caller can meet it again by chance)."""
    await RetiredIds(store, pg, SYSTEM_CLOCK).fill()  # an empty history: only the mark
    await client.enqueue("echo", ["x"], job_id="chosen-1")
    await _run_and_forget(client, store, pg, "chosen-1")
    generated = await client.enqueue("echo", ["y"])
    await _run_and_forget(client, store, pg, generated)
    assert await redis.zrange(keys.retired, 0, -1) == ["chosen-1"]
    offline = _offline_client(settings, redis)
    again = await offline.enqueue_result("echo", ["x"], job_id="chosen-1")
    assert (again.created, again.state) == (False, "succeeded")
    fresh = await offline.enqueue_result("echo", ["z"], job_id="chosen-2")
    assert (fresh.created, fresh.state) == (True, "scheduled")


async def test_a_deleted_or_parked_chosen_id_stays_taken(
    redis: Redis, pg: PgStore, settings: Settings
) -> None:
    """A chosen id deleted from Redis, or parked in PostgreSQL (due beyond the park
    horizon), is retired: enqueueing it again, near, creates nothing."""
    parking = replace(settings, park_horizon=60.0)
    client = Client(parking, redis, pg)
    store = client.store
    await RetiredIds(store, pg, SYSTEM_CLOCK).fill()
    await client.enqueue("echo", ["x"], job_id="gone")
    await client.delete("gone")
    await client.enqueue("echo", ["x"], job_id="far", delay=timedelta(hours=2))
    assert not await store.job_exists("far")  # it waits in PostgreSQL
    offline = _offline_client(parking, redis)
    deleted = await offline.enqueue_result("echo", ["x"], job_id="gone")
    parked = await offline.enqueue_result("echo", ["x"], job_id="far")
    assert [(r.created, r.state) for r in (deleted, parked)] == [
        (False, "deleted"),
        (False, "scheduled"),
    ]
    assert not await store.job_exists("far")


async def test_the_fill_takes_the_kept_history_and_trimming_frees_old_ids(
    client: Client, store: RedisStore, pg: PgStore, redis: Redis, keys: Keys, settings: Settings
) -> None:
    """Jobs Redis forgot before the record existed come from PostgreSQL's history (a job
    Redis still holds does not); until that fill, the client asks PostgreSQL, and once
    the history keeper trims an id's old days the id is free again."""
    await client.enqueue("echo", ["x"], job_id="old")
    await _run_and_forget(client, store, pg, "old")
    await redis.delete(keys.retired)  # forgotten before the record existed
    await client.enqueue("echo", ["x"], job_id="live")
    offline = _offline_client(settings, redis)
    with pytest.raises(StoreUnavailable, match="cannot check that job id 'old' is unused"):
        await offline.enqueue("echo", ["x"], job_id="old")
    keeper = RetiredIds(store, pg, SYSTEM_CLOCK)
    await keeper.upkeep(keep_s=None)
    assert await redis.zrange(keys.retired, 0, -1) == ["old"]
    again = await offline.enqueue_result("echo", ["x"], job_id="old")
    assert (again.created, again.state) == (False, "succeeded")
    await keeper.upkeep(keep_s=-1.0)  # every day before now is dropped
    assert await redis.zcard(keys.retired) == 0
    reused = await offline.enqueue_result("echo", ["x"], job_id="old")
    assert (reused.created, reused.state) == (True, "scheduled")
