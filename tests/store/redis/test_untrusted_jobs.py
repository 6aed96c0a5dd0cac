"""Job hashes that runner did not write: each script checks before it writes.

Anyone who can write to Redis may leave a job with a missing or non-numeric
field, or a key of another type under a job's name. The scripts must neither
raise (a Lua error keeps the writes made before it, leaving a good job half
claimed) nor leave the bad job in a set for ever: it is set aside, failed with
a reason naming the field, and listed in the dead-letter set.
"""

from __future__ import annotations

import orjson
import pytest
from redis.asyncio import Redis

from runner.jobs import Outcome
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.store.redis.test_scripts import DAEMON, NOW, new_job, stream_events

LEASE = NOW + 30_000

MALFORMED = [
    ("attempt", "lots"),
    ("attempt", None),
    ("seq", "x"),
    ("due_at", "soon"),
    ("max_attempts", "lots"),
    ("kind", "gpu"),
    ("task", None),
]


async def _spoil(redis: Redis, keys: Keys, job_id: str, field: str, value: str | None) -> None:
    if value is None:
        await redis.hdel(keys.job(job_id), stored(field))
    else:
        await redis.hset(keys.job(job_id), stored(field), value)


@pytest.mark.parametrize(("field", "value"), MALFORMED)
async def test_claim_sets_a_malformed_job_aside_and_claims_the_good_one_whole(
    store: RedisStore, redis: Redis, keys: Keys, field: str, value: str | None
) -> None:
    """A bad job claimed in the same call as a good one: the good one is claimed with
    its event (no gap in its history), the bad one failed with the field named."""
    await store.enqueue_many([new_job("bad"), new_job("good")], "client", NOW)
    await _spoil(redis, keys, "bad", field, value)
    claimed = await store.claim_due(NOW + 1, {"async": 10}, DAEMON, LEASE)
    assert [job.id for job in claimed.jobs] == ["good"]
    assert [job_id for job_id, _ in claimed.set_aside] == ["bad"]
    reason = claimed.set_aside[0][1]
    assert f"{field}=" in reason and "malformed job" in reason
    bad = await store.get_job("bad")
    assert bad is not None and (bad.state, bad.error) == ("failed", reason)
    assert await redis.zrange(keys.dead, 0, -1) == ["bad"]
    assert await redis.zcard(keys.due("async")) == 0
    events = {(e.job_id, e.seq): e.to_state for e in await stream_events(store)}
    assert events[("good", 2)] == "running"
    if field != "seq":  # with no trustworthy seq, the dead-letter set is the only record
        assert events[("bad", 2)] == "failed"


async def test_a_key_of_another_type_is_set_aside_not_raised_on(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A string under a job's name, listed as due: claim, enqueue and renew carry on."""
    await redis.set(keys.job("str"), "not a hash")
    await redis.zadd(keys.due("io"), {"str": NOW})
    await store.enqueue(new_job("good", kind="io"), "client", NOW)
    claimed = await store.claim_due(NOW + 1, {"io": 10}, DAEMON, LEASE)
    assert [job.id for job in claimed.jobs] == ["good"]
    assert claimed.set_aside == [
        ("str", "malformed job: the key is not a hash; it was set aside, not run")
    ]
    results = await store.enqueue_many([new_job("str"), new_job("fresh")], "client", NOW)
    assert [(r.created, r.state) for r in results] == [(False, "invalid"), (True, "scheduled")]
    assert await store.renew_leases(DAEMON, LEASE, [("str", 2), ("good", 2)]) == [("str", "")]


async def test_reap_sets_aside_a_malformed_job_instead_of_failing_every_daemon(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """max_attempts = "lots" on a job whose lease expired: the reaper fails it with the
    reason and goes on to put back the healthy job beside it."""
    await store.enqueue_many([new_job("bad"), new_job("good")], "client", NOW)
    await store.claim_due(NOW, {"async": 10}, DAEMON, NOW + 10)
    await redis.hset(keys.job("bad"), stored("max_attempts"), "lots")
    reaped = {r.id: r for r in await store.reap_expired(NOW + 20, "reaper")}
    assert reaped["good"].state == "retrying" and not reaped["good"].set_aside
    assert reaped["bad"].state == "failed" and 'max_attempts="lots"' in reaped["bad"].set_aside
    assert await redis.zcard(keys.leases) == 0
    assert await redis.zrange(keys.dead, 0, -1) == ["bad"]


async def test_finish_sets_aside_a_job_whose_hash_turned_malformed(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """The outcome of a job whose seq was overwritten meanwhile: replied 2, failed,
    lease gone; the other outcome of the batch is recorded."""
    await store.enqueue_many([new_job("bad"), new_job("good")], "client", NOW)
    await store.claim_due(NOW, {"async": 10}, DAEMON, LEASE)
    await redis.hset(keys.job("bad"), stored("seq"), "many")
    outcomes = [Outcome("bad", 1, 2, "succeed"), Outcome("good", 1, 2, "succeed")]
    assert await store.finish(NOW + 5, DAEMON, outcomes) == [2, 1]
    bad = await store.get_job("bad")
    assert bad is not None and bad.state == "failed" and 'seq="many"' in (bad.error or "")
    assert await redis.zcard(keys.leases) == 0
    good = await store.get_job("good")
    assert good is not None and good.state == "succeeded"


async def test_a_malformed_cron_tick_or_wake_up_does_not_break_enqueue(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A non-numeric last tick in the cron state is taken as 'never fired'."""
    await redis.hset(keys.cron_state, "nightly:tick", "yesterday")
    job = new_job("cron:nightly:t1")
    guarded = type(job)(**{**job.__dict__, "guard": ("nightly", NOW, "allow")})
    [result] = await store.enqueue_many([guarded], "cron", NOW)
    assert result.created
    assert orjson.loads(orjson.dumps(await store.cron_state()))["nightly:tick"] == str(NOW)
