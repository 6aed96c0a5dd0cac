"""Fairness between keys in the claim path, on real Redis: `[tasks.X] fair_key` shares a
task's starts between the values of that argument in turn, so a key with thousands of
jobs waiting does not hold back another's few; a job of such a task that comes back
another way (a retry, a cap, a resume, an update) rejoins its key's turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.limits.shared import limited_client

LEASE_MS = 60_000


@pytest.fixture
def fair(make_settings: Callable[..., Settings], redis: Redis, pg: PgStore) -> Client:
    return limited_client(make_settings, redis, pg, fair_key="args.0")


async def _claim(client: Client, count: int) -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": count}, "d1", now + LEASE_MS)
    return [job.id for job in found.jobs]


async def _enqueue(client: Client, tenant: str, count: int, **options: object) -> list[str]:
    jobs = [client.new_job("echo", [tenant, n], job_id=f"{tenant}{n}", **options)  # type: ignore[arg-type]
            for n in range(count)]  # fmt: skip
    return await client.enqueue_many(jobs)


async def test_a_key_with_fifty_jobs_is_not_held_back_by_one_with_five_thousand(
    fair: Client,
) -> None:
    await _enqueue(fair, "a", 5000)
    await _enqueue(fair, "b", 50)
    claimed: list[str] = []
    while len([i for i in claimed if i.startswith("b")]) < 50:
        claimed += await _claim(fair, 20)
        assert len(claimed) <= 200, "b waits behind a"
    assert [i[0] for i in claimed[:6]] == ["a", "b"] * 3  # one of each in turn
    assert len(claimed) == 100


async def test_keys_take_turns_oldest_turn_first_and_one_alone_takes_all_it_may(
    fair: Client,
) -> None:
    await _enqueue(fair, "a", 30)
    await _enqueue(fair, "b", 30)
    await _enqueue(fair, "c", 30)
    now = fair.clock.now_ms()
    found = await fair.store.claim_due(now, {"async": 2}, "d1", now + LEASE_MS)
    assert [job.id for job in found.jobs] == ["a0", "b0"]  # c's turn is next, then a, b
    due = found.next_due_ms["async"]  # turns are due now: the daemon claims again at once
    assert due is not None and due <= now
    assert (await _claim(fair, 3))[0] == "c0"
    await _enqueue(fair, "d", 100)
    rest = await _claim(fair, 500)
    assert len(rest) == 85 + 100 and rest[-10:] == [f"d{n}" for n in range(90, 100)]


async def test_a_delayed_job_waits_for_its_due_time_and_wakes_the_daemons_then(
    fair: Client,
) -> None:
    [job_id] = await _enqueue(fair, "a", 1, delay=60)
    now = fair.clock.now_ms()
    found = await fair.store.claim_due(now, {"async": 10}, "d1", now + LEASE_MS)
    assert found.jobs == []
    due = found.next_due_ms["async"]
    assert due is not None and due >= now + 59_000
    later = now + 61_000
    found = await fair.store.claim_due(later, {"async": 10}, "d1", later + LEASE_MS)
    assert [job.id for job in found.jobs] == [job_id]


async def test_requests_reach_a_job_waiting_for_its_turn(
    fair: Client, redis: Redis, keys: Keys
) -> None:
    ids = await _enqueue(fair, "a", 4)
    assert all(r.ok for r in await fair.request("cancel", ids[:1]))
    assert all(r.ok for r in await fair.request("update", ids[1:2], delay=60))
    assert all(r.ok for r in await fair.request("delete", ids[2:3]))
    assert await _claim(fair, 10) == ids[3:]
    assert await redis.zcard(f"{keys.due_prefix}fair:echo=a") == 0
    assert await fair.store.outstanding() > 0  # a1 waits, due later
    later = fair.clock.now_ms() + 61_000
    found = await fair.store.claim_due(later, {"async": 10}, "d1", later + LEASE_MS)
    assert found.jobs == []  # it was in its due set: it joins its key's turn, due now
    assert (found.next_due_ms["async"] or 0) <= later
    found = await fair.store.claim_due(later, {"async": 10}, "d1", later + LEASE_MS)
    assert [job.id for job in found.jobs] == [ids[1]]


async def test_a_retried_and_a_capped_job_rejoin_their_turn(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    client = limited_client(make_settings, redis, pg, fair_key="args.0", concurrency=1,
                            retries=1)  # fmt: skip
    await _enqueue(client, "a", 2)
    await _enqueue(client, "b", 1)
    assert await _claim(client, 10) == ["a0"]  # the others wait for the one slot
    assert await redis.zrange(f"{keys.due_prefix}capped:echo", 0, -1) == ["a1", "b0"]
    seq, attempt = await redis.hmget(keys.job("a0"), ["q", "n"])
    now = client.clock.now_ms()
    outcome = Outcome("a0", int(str(attempt)), int(str(seq)), "retry_later", now)
    assert await client.store.finish(now, "d1", [outcome]) == [1]
    # The freed slot went to a1, back in its key's turn; a0, retried, was in its due
    # set: the claim found it there, put it back in its key's turn, and served that
    # turn: a1 (due first) took the slot, a0 waits for the next.
    assert await _claim(client, 10) == ["a1"]
    assert await redis.zcard(f"{keys.due_prefix}fair:echo=a") == 0
    assert sorted(await redis.zrange(f"{keys.due_prefix}capped:echo", 0, -1)) == ["a0", "b0"]


async def test_a_paused_task_s_jobs_rejoin_their_turn_when_resumed(fair: Client) -> None:
    await _enqueue(fair, "a", 3)
    await fair.store.pause_task("echo", "test", fair.clock.now_ms())
    assert await _claim(fair, 10) == []  # held while paused
    await fair.store.resume_task("echo")
    claimed = await _claim(fair, 10)
    claimed += await _claim(fair, 10)  # the first may only put them back in their turn
    assert sorted(claimed) == ["a0", "a1", "a2"]


async def test_turns_and_groups_of_another_type_are_set_aside(
    fair: Client, redis: Redis, keys: Keys
) -> None:
    """Anything in Redis is untrusted: a string where a group's turns or jobs should be is
    moved aside, and claims and enqueues go on."""
    turns = f"{keys.due_prefix}fairq:async"
    await redis.set(turns, "junk")
    await _enqueue(fair, "a", 2)
    assert await redis.get(f"{turns}:malformed") == "junk"
    await redis.set(f"{keys.due_prefix}fair:echo=b", "junk")
    await _enqueue(fair, "b", 1)
    assert sorted(await _claim(fair, 10)) == ["a0", "a1", "b0"]
    await redis.set(turns, "junk again")
    assert await _claim(fair, 10) == []
    await _enqueue(fair, "c", 1)
    assert await _claim(fair, 10) == ["c0"]


async def test_every_job_is_claimed_whatever_comes_between(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    """Enqueues of 5 keys now and a little later, claims of every size, retries, updates,
    cancels and a pause, in a seeded random order: every job that was not cancelled is
    claimed in the end, and none twice at once."""
    import random  # noqa: PLC0415

    rng = random.Random(7)
    client = limited_client(make_settings, redis, pg, fair_key="args.0", retries=1)
    live: set[str] = set()
    claimed: set[str] = set()
    for step in range(300):
        move = rng.random()
        now = client.clock.now_ms()
        if move < 0.35:
            key, delay = f"k{rng.randrange(5)}", rng.choice([None, 0.01, 0.05])
            jobs = [client.new_job("echo", [key, step, n], delay=delay)
                    for n in range(rng.randrange(1, 30))]  # fmt: skip
            live.update(await client.enqueue_many(jobs))
        elif move < 0.75:
            found = await client.store.claim_due(
                now, {"async": rng.randrange(1, 40)}, "d1", now + LEASE_MS
            )
            got = {job.id for job in found.jobs}
            assert not got & claimed, "claimed twice"
            claimed |= got
        elif move < 0.85 and live - claimed:
            job_id = rng.choice(sorted(live - claimed))
            action = rng.choice(["cancel", "update"])
            [result] = await client.request(
                action, [job_id], **({"delay": 0.02} if action == "update" else {})
            )
            if result.ok and action == "cancel":
                live.discard(job_id)
        elif move < 0.9:
            await client.store.pause_task("echo", "test", now)
            await client.store.resume_task("echo")
    deadline = client.clock.now_ms() + 10_000
    while live - claimed and client.clock.now_ms() < deadline:
        now = client.clock.now_ms()
        found = await client.store.claim_due(now, {"async": 50}, "d1", now + LEASE_MS)
        got = {job.id for job in found.jobs}
        assert not got & claimed, "claimed twice"
        claimed |= got
        if not got:
            await asyncio.sleep(0.01)
    assert live - claimed == set()
