"""Contract tests for each Lua script against real Redis: state, sets and stream move together."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from runner.client.client import Client
from runner.jobs import Event, NewJob, Outcome
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from runner.store.redis.upgrade import upgrade_job_hashes

NOW = 1_800_000_000_000
DAEMON = "host:1:abcd"


def new_job(job_id: str, kind: str = "async", due: int = NOW, attempts: int = 3) -> NewJob:
    return NewJob(job_id, "echo", kind, "[1]", '{"a": 2}', due, attempts)


async def stream_events(store: RedisStore) -> list[Event]:
    await store.ensure_event_group()
    read = await store.read_events("test-consumer", 10_000, None)
    return [Event(*row) for entry in read for row in orjson.loads(entry.payload or "[]")]


async def test_enqueue_is_idempotent_by_id(store: RedisStore, redis: Redis, keys: Keys) -> None:
    """A second enqueue with the same id changes nothing and reports the existing state."""
    first = await store.enqueue(new_job("j1"), "client", NOW)
    second = await store.enqueue(new_job("j1", due=NOW + 5000), "client", NOW)
    assert (first.created, second.created) == (True, False)
    assert second.state == "scheduled"
    assert await redis.zscore(keys.due("async"), "j1") == NOW
    events = await stream_events(store)
    assert [(e.job_id, e.seq, e.from_state, e.to_state) for e in events] == [
        (
            "j1",
            1,
            "",
            "scheduled",
        )
    ]


async def test_claim_respects_per_kind_limits_and_due_time(store: RedisStore) -> None:
    """Only due jobs are claimed, never more per kind than asked (no prefetch)."""
    for i in range(5):
        await store.enqueue(new_job(f"a{i}"), "c", NOW)
    await store.enqueue(new_job("io1", kind="io"), "c", NOW)
    await store.enqueue(new_job("later", due=NOW + 1000), "c", NOW)
    result = await store.claim_due(NOW, {"async": 3, "io": 0, "cpu": 5}, DAEMON, NOW + 30_000)
    assert [j.id for j in result.jobs] == ["a0", "a1", "a2"]
    assert all(j.attempt == 1 and j.args_json == "[1]" for j in result.jobs)
    assert result.next_due_ms == {"async": NOW, "io": NOW, "cpu": None}
    rest = await store.claim_due(NOW, {"async": 10, "io": 10, "cpu": 0}, DAEMON, NOW + 30_000)
    assert sorted(j.id for j in rest.jobs) == ["a3", "a4", "io1"]
    assert rest.next_due_ms["async"] == NOW + 1000


async def test_finish_is_fenced_by_owner_and_claim(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A daemon that no longer owns a job (or names another claim) cannot overwrite its
    state; the claim is the seq of the claim's event."""
    await store.enqueue(new_job("j1"), "c", NOW)
    (job,) = (await store.claim_due(NOW, {"async": 1}, DAEMON, NOW + 30_000)).jobs
    assert (job.attempt, job.claim) == (1, 2)
    stale = Outcome("j1", 1, job.claim, "succeed", result_json="1")
    assert await store.finish(NOW, "other-daemon", [stale]) == [False]
    assert await store.finish(NOW, DAEMON, [Outcome("j1", 1, 7, "succeed")]) == [False]
    assert await redis.hget(keys.job("j1"), stored("state")) == "running"
    assert await store.finish(NOW + 5, DAEMON, [stale]) == [True]
    assert await redis.hget(keys.job("j1"), stored("state")) == "succeeded"
    assert await redis.zscore(keys.leases, "j1") is None
    assert await store.finish(NOW, DAEMON, [stale]) == [False]  # already finished


async def test_a_cancelled_run_cannot_finish_its_retried_run(
    store: RedisStore, client: Client, redis: Redis, keys: Keys
) -> None:
    """Cancelled as its body ends, retried and claimed again by the same daemon at the
    same attempt (a retry starts the attempts anew): the first run's outcome, and its
    lease renewal, are fenced off; the new run's are not."""
    await store.enqueue(new_job("j1"), "c", NOW)
    (first,) = (await store.claim_due(NOW, {"async": 1}, DAEMON, NOW + 30_000)).jobs
    await client.cancel("j1")
    await client.retry("j1")
    due = await redis.zscore(keys.due("async"), "j1")
    assert due is not None
    (second,) = (await store.claim_due(int(due), {"async": 1}, DAEMON, NOW + 60_000)).jobs
    assert (first.attempt, second.attempt) == (1, 1)
    assert second.claim > first.claim
    ran_first = Outcome("j1", first.attempt, first.claim, "succeed", result_json='"first"')
    assert await store.finish(NOW + 5, DAEMON, [ran_first]) == [False]
    lost = await store.renew_leases(DAEMON, NOW + 90_000, [("j1", first.claim)])
    assert lost == [("j1", "running")]
    assert await store.renew_leases(DAEMON, NOW + 90_000, [("j1", second.claim)]) == []
    assert await redis.hget(keys.job("j1"), stored("state")) == "running"
    ran_second = Outcome("j1", second.attempt, second.claim, "succeed", result_json='"second"')
    assert await store.finish(NOW + 9, DAEMON, [ran_second]) == [True]
    record = await store.get_job("j1")
    assert record is not None and (record.state, record.result) == ("succeeded", "second")


async def test_finished_job_is_kept_until_recorded(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A finished job has no expiry until Postgres holds it at that seq: its id must
    not come free while its history is unwritten. Set-aside jobs are kept."""
    await store.enqueue(new_job("j1"), "c", NOW)
    await store.claim_due(NOW, {"async": 1}, DAEMON, NOW + 30_000)
    await store.finish(NOW, DAEMON, [Outcome("j1", 1, 2, "succeed")])
    assert await redis.pttl(keys.job("j1")) == -1
    assert await store.forget_recorded([("j1", 2)], NOW) == 0  # an older seq: not this state
    assert await store.forget_recorded([("j1", 3), ("nope", 1)], NOW) == 1
    assert 0 < await redis.pttl(keys.job("j1")) <= 60_000
    await store.enqueue(new_job("j2"), "c", NOW)
    await redis.zadd(keys.dead, {"j2": NOW})
    await redis.hset(keys.job("j2"), mapping={stored("state"): "failed", stored("seq"): 2})
    assert await store.forget_recorded([("j2", 2)], NOW) == 0
    assert await redis.pttl(keys.job("j2")) == -1


async def test_finish_retry_goes_back_to_schedule(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A retry puts the job back in its kind's due set at the given time."""
    await store.enqueue(new_job("j1", kind="io"), "c", NOW)
    await store.claim_due(NOW, {"io": 1}, DAEMON, NOW + 30_000)
    outcome = Outcome("j1", 1, 2, "retry_later", due_at_ms=NOW + 2000, error="boom")
    assert await store.finish(NOW, DAEMON, [outcome]) == [True]
    job = await store.get_job("j1")
    assert job is not None
    assert (job.state, job.error, job.due_at_ms) == ("retrying", "boom", NOW + 2000)
    assert await redis.zscore(keys.due("io"), "j1") == NOW + 2000
    again = await store.claim_due(NOW + 2000, {"io": 1}, DAEMON, NOW + 40_000)
    assert [(j.id, j.attempt) for j in again.jobs] == [("j1", 2)]


async def test_renew_reports_lost_leases(store: RedisStore, redis: Redis, keys: Keys) -> None:
    """Renewal extends owned leases and names the jobs this daemon no longer holds."""
    await store.enqueue(new_job("j1"), "c", NOW)
    await store.enqueue(new_job("j2"), "c", NOW)
    await store.claim_due(NOW, {"async": 2}, DAEMON, NOW + 1000)
    await store.finish(NOW, DAEMON, [Outcome("j2", 1, 2, "succeed")])
    lost = await store.renew_leases(DAEMON, NOW + 9000, [("j1", 2), ("j2", 2)])
    assert lost == [("j2", "succeeded")]
    assert await redis.zscore(keys.leases, "j1") == NOW + 9000


async def test_reap_retries_then_fails_when_attempts_spent(store: RedisStore) -> None:
    """An expired lease puts the job back while attempts remain, and fails it after."""
    await store.enqueue(new_job("j1", attempts=2), "c", NOW)
    await store.claim_due(NOW, {"async": 1}, DAEMON, NOW + 1000)
    assert await store.reap_expired(NOW + 999, "reaper") == []
    reaped = await store.reap_expired(NOW + 1000, "reaper")
    assert [(r.id, r.state, r.attempt, r.owner) for r in reaped] == [("j1", "retrying", 1, DAEMON)]
    await store.claim_due(NOW + 1000, {"async": 1}, DAEMON, NOW + 2000)
    reaped = await store.reap_expired(NOW + 2000, "reaper")
    assert [(r.state, r.attempt) for r in reaped] == [("failed", 2)]
    job = await store.get_job("j1")
    assert job is not None and job.state == "failed"
    assert job.error is not None and "lease expired" in job.error
    # The old owner's late outcome is fenced off.
    assert await store.finish(NOW, DAEMON, [Outcome("j1", 2, 4, "succeed")]) == [False]


async def test_every_transition_reaches_the_stream_in_order(store: RedisStore) -> None:
    """Each script appends its transitions with consecutive sequence numbers."""
    await store.enqueue(new_job("j1"), "c", NOW)
    await store.claim_due(NOW, {"async": 1}, DAEMON, NOW + 1000)
    await store.finish(NOW + 7, DAEMON, [Outcome("j1", 1, 2, "succeed", detail_json='{"x":1}')])
    events = await stream_events(store)
    assert [(e.seq, e.from_state, e.to_state, e.attempt) for e in events] == [
        (1, "", "scheduled", 0),
        (2, "scheduled", "running", 1),
        (3, "running", "succeeded", 1),
    ]
    assert events[1].daemon == DAEMON and events[2].at_ms == NOW + 7
    assert events[2].detail_json == '{"x":1}'


async def test_claim_drops_stale_members(store: RedisStore, redis: Redis, keys: Keys) -> None:
    """A due-set member whose job hash is gone is dropped, not claimed."""
    await store.enqueue(new_job("j1"), "c", NOW)
    await redis.delete(keys.job("j1"))
    result = await store.claim_due(NOW, {"async": 5}, DAEMON, NOW + 1000)
    assert result.jobs == []
    assert await redis.zcard(keys.due("async")) == 0


async def test_job_hashes_of_the_older_layout_are_renamed_once_and_then_claimed(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A job a runner with full field names left waiting is renamed at the next start
    and runs like any other; the scan is not repeated once the keyspace is done."""
    old: dict[Any, Any] = {
        "id": "old1", "task": "echo", "kind": "async", "args": "[7]", "kwargs": "{}",
        "due_at": str(NOW), "state": "scheduled", "attempt": "0", "max_attempts": "2",
        "seq": "1", "created_at": str(NOW), "updated_at": str(NOW),
    }  # fmt: skip
    await redis.hset(keys.job("old1"), mapping=old)
    await redis.zadd(keys.due("async"), {"old1": NOW})
    await store.enqueue(new_job("new1"), "client", NOW)
    assert await upgrade_job_hashes(redis, keys, store.scripts) == 1
    renamed = await redis.hgetall(keys.job("old1"))
    assert renamed[stored("args")] == "[7]" and "args" not in renamed and "id" not in renamed
    assert await upgrade_job_hashes(redis, keys, store.scripts) == 0  # marked done
    claimed = await store.claim_due(NOW, {"async": 10}, DAEMON, NOW + 30_000)
    assert sorted(job.id for job in claimed.jobs) == ["new1", "old1"]
    assert not await redis.zrange(keys.dead, 0, -1)
