"""The cron service against real Redis, with an injected clock: misfire, exactly-once, overlap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import ConnectionPool, Redis

from runner.config.cron import CronSettings
from runner.daemon.cron_service import IDLE_S, CronService
from runner.jobs import Outcome
from runner.store.redis.store import RedisStore
from tests.conftest import TEST_TASKS

T0 = datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> float:
        return self.moment.timestamp()

    def now_ms(self) -> int:
        return int(self.moment.timestamp() * 1000)


def service(store: RedisStore, clock: FakeClock, **cron: object) -> CronService:
    settings = CronSettings(name="minutely", schedule="* * * * *", task="echo", **cron)  # type: ignore[arg-type]  # test options
    return CronService(store, {"minutely": settings}, TEST_TASKS, clock)


async def cron_jobs(redis: Redis, store: RedisStore) -> list[str]:
    keys = [key async for key in redis.scan_iter(match=f"{store.keys.job_prefix}cron:*")]
    return sorted(key.removeprefix(store.keys.job_prefix) for key in keys)


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("once", 1), ("all", 3)])
async def test_restart_after_three_missed_ticks_follows_the_misfire_policy(
    store: RedisStore, redis: Redis, policy: str, expected: int
) -> None:
    """Stopped across 10:01, 10:02 and 10:03: skip fires none, once the latest, all three."""
    clock = FakeClock(T0)
    first = service(store, clock, misfire=policy)
    await first.load_state()
    assert await first.fire_due(clock.moment) == []  # a new schedule fires nothing past
    clock.moment = T0 + timedelta(minutes=3)  # 10:03:30, no daemon ran meanwhile
    restarted = service(store, clock, misfire=policy)
    await restarted.load_state()
    fired = await restarted.fire_due(clock.moment)
    assert [outcome for _, _, outcome in fired] == ["scheduled"] * expected
    ids = await cron_jobs(redis, store)
    assert len(ids) == expected
    if policy == "once":
        assert ids == ["cron:minutely:2026-06-01T10:03:00Z"]
    for job_id in ids:
        job = await store.get_job(job_id)
        assert job is not None and job.extra["cron"] == "minutely"


async def _racing_stores(redis: Redis, store: RedisStore, count: int) -> list[RedisStore]:
    """Stores on connections of their own, as separate daemons have: their requests
    reach Redis at once instead of queueing on one client."""
    stores = []
    for _ in range(count):
        own = Redis(connection_pool=ConnectionPool(**redis.connection_pool.connection_kwargs))
        stores.append(RedisStore(own, store.keys))
    await asyncio.gather(*(s.redis.ping() for s in stores))  # connected before the race
    return stores


async def test_many_daemons_fire_each_tick_once(store: RedisStore, redis: Redis) -> None:
    """Three services racing for the same tick (at once, each on its own connection):
    one enqueues it, two find it handled, in every one of 20 rounds."""
    clock = FakeClock(T0)
    stores = await _racing_stores(redis, store, 3)
    services = [service(own, clock) for own in stores]
    for s in services:
        await s.load_state()
    try:
        for minute in range(1, 21):  # a race decided by chance must not pass once by luck
            clock.moment = T0 + timedelta(seconds=30, minutes=minute - 1)  # 10:mm:00
            fired = await asyncio.gather(*(s.fire_due(clock.moment) for s in services))
            outcomes = [o for each in fired for _, _, o in each]
            assert sorted(outcomes) == ["already", "already", "scheduled"], minute
    finally:
        await asyncio.gather(*(s.redis.aclose(close_connection_pool=True) for s in stores))
    ticks = await cron_jobs(redis, store)
    assert ticks[0] == "cron:minutely:2026-06-01T10:01:00Z" and len(ticks) == 20
    job = await store.get_job("cron:minutely:2026-06-01T10:01:00Z")
    assert job is not None and job.extra == {
        "cron": "minutely",
        "tick": "2026-06-01T10:01:00.000Z",
    }
    await store.ensure_event_group()
    read = await store.read_events("test", 100, None)
    enqueued = [e for entry in read for e in orjson.loads(entry.payload or "[]") if e[0] == job.id]
    assert orjson.loads(enqueued[0][7])["cron"] == "minutely"  # recorded like any job


async def test_overlap_skip_waits_for_the_previous_run(store: RedisStore, redis: Redis) -> None:
    """With overlap = skip, a tick is skipped while the last run is still going."""
    clock = FakeClock(T0)
    svc = service(store, clock, overlap="skip")
    await svc.load_state()
    clock.moment = T0 + timedelta(seconds=30)
    assert [o for *_, o in await svc.fire_due(clock.moment)] == ["scheduled"]
    first_id = "cron:minutely:2026-06-01T10:01:00Z"
    now_ms = clock.now_ms()
    claimed = await store.claim_due(now_ms, {"async": 1}, "d", now_ms + 60_000)
    assert [j.id for j in claimed.jobs] == [first_id]
    clock.moment += timedelta(minutes=1)
    assert [o for *_, o in await svc.fire_due(clock.moment)] == ["skipped"]
    await store.finish(
        clock.now_ms(), "d", [Outcome(first_id, 1, claimed.jobs[0].claim, "succeed")]
    )
    clock.moment += timedelta(minutes=1)
    assert [o for *_, o in await svc.fire_due(clock.moment)] == ["scheduled"]
    assert len(await cron_jobs(redis, store)) == 2


async def test_overlap_allow_piles_up(store: RedisStore, redis: Redis) -> None:
    """With overlap = allow, ticks fire whatever the previous run is doing."""
    clock = FakeClock(T0)
    svc = service(store, clock)
    await svc.load_state()
    for _ in range(3):
        clock.moment += timedelta(minutes=1)
        await svc.fire_due(clock.moment)
    assert len(await cron_jobs(redis, store)) == 3


async def test_a_clock_set_back_refires_no_tick(store: RedisStore, redis: Redis) -> None:
    """A running service fires 10:01 and 10:02, then the clock is set back to 09:55:30:
    nothing fires again, the service sleeps no longer than its idle bound meanwhile,
    and once the clock passes 10:03 that tick fires, once."""
    clock = FakeClock(T0)
    svc = service(store, clock)
    await svc.load_state()
    for minute in (1, 2):
        clock.moment = T0 + timedelta(seconds=30, minutes=minute - 1)
        assert [o for *_, o in await svc.fire_due(clock.moment)] == ["scheduled"]
    clock.moment = T0 - timedelta(minutes=5)  # 09:55:30
    assert await svc.fire_due(clock.moment) == []
    assert 0 < svc._seconds_to_next() <= IDLE_S
    clock.moment = T0 + timedelta(minutes=2, seconds=30)  # 10:03:00
    fired = await svc.fire_due(clock.moment)
    assert [(tick.minute, o) for _, tick, o in fired] == [(3, "scheduled")]
    assert await cron_jobs(redis, store) == [
        f"cron:minutely:2026-06-01T10:0{m}:00Z" for m in (1, 2, 3)
    ]


async def test_a_clock_jumping_ahead_fires_by_the_misfire_policy(
    store: RedisStore, redis: Redis
) -> None:
    """A running service whose clock jumps three hours ahead (a VM resumed, NTP stepping)
    does not fire the 180 ticks it skipped over: with misfire = once, only the latest;
    then it goes on minute by minute."""
    clock = FakeClock(T0)
    svc = service(store, clock, misfire="once")
    await svc.load_state()
    clock.moment = T0 + timedelta(seconds=30)
    assert [o for *_, o in await svc.fire_due(clock.moment)] == ["scheduled"]
    clock.moment = T0 + timedelta(hours=3, seconds=30)  # 13:01:00
    assert [tick.hour for _, tick, _ in await svc.fire_due(clock.moment)] == [13]
    clock.moment += timedelta(minutes=1)
    assert [(t.hour, t.minute) for _, t, _ in await svc.fire_due(clock.moment)] == [(13, 2)]
    assert len(await cron_jobs(redis, store)) == 3
