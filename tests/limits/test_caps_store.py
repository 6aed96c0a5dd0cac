"""Concurrency caps in the claim path, on real Redis: `[tasks.X] concurrency = N`
holds across every daemon (here: claims under several daemon ids), per key value
with `concurrency_key`; a slot frees when a run ends, is cancelled, or its lease
expires, and the earliest job waiting for it goes back to its due set. A job held
back by a cap stays due (not failed, no attempt spent), and no claim sees it in vain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.client.show import show_document
from runner.config.settings import Settings
from runner.errors import UsageError
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.conftest import TEST_TASKS

LEASE_MS = 60_000


@pytest.fixture
def capped(make_settings: Callable[..., Settings], redis: Redis, pg: PgStore) -> Client:
    """A client whose `echo` has 2 slots, and whose `noop` has 1 per kwargs.account."""
    tasks = dict(TEST_TASKS)
    tasks["echo"] = replace(tasks["echo"], concurrency=2)
    tasks["noop"] = replace(tasks["noop"], concurrency=1, concurrency_key="kwargs.account")
    return Client(make_settings(tasks=tasks), redis, pg)


async def _claim(client: Client, daemon: str, count: int = 10) -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": count}, daemon, now + LEASE_MS)
    return [job.id for job in found.jobs]


async def _finish(client: Client, redis: Redis, keys: Keys, daemon: str, job_id: str) -> None:
    """End the job's run as a daemon's finisher does, on the fields of its claim."""
    seq, attempt = await redis.hmget(keys.job(job_id), ["q", "n"])
    outcome = Outcome(job_id, int(str(attempt)), int(str(seq)), "succeed")
    assert await client.store.finish(client.clock.now_ms(), daemon, [outcome]) == [1]


async def test_a_cap_holds_across_daemons_and_a_finished_run_lets_the_next_in(
    capped: Client, redis: Redis, keys: Keys
) -> None:
    ids = [await capped.enqueue("echo", [n], job_id=f"e{n}") for n in range(5)]
    first = await _claim(capped, "d1", 1) + await _claim(capped, "d2")
    assert first == ["e0", "e1"]
    assert await _claim(capped, "d3") == []
    waiting = await redis.zrange(f"{keys.due_prefix}capped:echo", 0, -1)
    assert waiting == ["e2", "e3", "e4"]
    assert set((await capped.store.job_states(ids[2:])).values()) == {"scheduled"}
    found = await capped.store.claim_due(capped.clock.now_ms(), {"async": 5}, "d3", 0)
    assert found.next_due_ms["async"] is None, "a claim would spin on jobs that cannot start"
    shown = await show_document(capped.settings, "e3")
    assert shown["waiting_for"] == "a concurrency slot: 2 of 2 of 'echo' running"
    assert "waiting_for" not in await show_document(capped.settings, "e0")
    await _finish(capped, redis, keys, "d1", "e0")
    assert await _claim(capped, "d3") == ["e2"]
    assert await _claim(capped, "d3") == []


async def test_a_cancel_and_an_expired_lease_free_their_slots(
    capped: Client, redis: Redis, keys: Keys
) -> None:
    for n in range(4):
        await capped.enqueue("echo", [n], job_id=f"c{n}")
    assert await _claim(capped, "d1") == ["c0", "c1"]
    await capped.cancel("c0")
    assert await _claim(capped, "d2") == ["c2"]
    now = capped.clock.now_ms()
    reaped = await capped.store.reap_expired(now + 2 * LEASE_MS, "d9")
    assert sorted(job.id for job in reaped) == ["c1", "c2"]
    # Both slots free: the waiting c3 takes one (c1 and c2 are due again at the reap's
    # moment, two leases from now), and one stays free.
    assert await _claim(capped, "d2") == ["c3"]
    assert await redis.zrange(f"{keys.due_prefix}slots:echo", 0, -1) == ["c3"]


async def test_a_cap_per_key_lets_each_key_run_its_own(
    capped: Client, redis: Redis, keys: Keys
) -> None:
    for n, account in enumerate(["a", "a", "b", "a", "c"]):
        await capped.enqueue("noop", kwargs={"account": account}, job_id=f"k{n}")
    assert await _claim(capped, "d1") == ["k0", "k2", "k4"]
    await _finish(capped, redis, keys, "d1", "k0")
    assert await _claim(capped, "d1") == ["k1"]
    shown = await capped.get("k3")
    assert shown is not None and shown.state == "scheduled" and shown.attempt == 0


async def test_requests_reach_a_job_waiting_for_a_slot(
    capped: Client, redis: Redis, keys: Keys
) -> None:
    """Pause, update and delete find a job where it waits for a slot; an update of its
    due time sends it back to its due set, to ask again then."""
    for n in range(5):
        await capped.enqueue("echo", [n], job_id=f"r{n}")
    assert await _claim(capped, "d1") == ["r0", "r1"]
    await capped.pause("r2")
    await capped.delete("r3")
    await capped.update("r4", delay=3600)
    assert await redis.zrange(f"{keys.due_prefix}capped:echo", 0, -1) == []
    await _finish(capped, redis, keys, "d1", "r0")
    assert await _claim(capped, "d1") == []  # r4 is due in an hour


async def test_an_untrusted_cap_counts_as_none(capped: Client, redis: Redis, keys: Keys) -> None:
    for n in range(3):
        await capped.enqueue("echo", [n], job_id=f"u{n}")
    for n in range(3):
        await redis.hset(keys.job(f"u{n}"), "l", "two")
    assert await _claim(capped, "d1") == ["u0", "u1", "u2"]


async def test_an_enqueue_without_the_key_is_refused_naming_it(capped: Client) -> None:
    with pytest.raises(UsageError, match=r"concurrency_key kwargs\.account: the job has no kwargs"):
        await capped.enqueue("noop", kwargs={"user": 1})


async def test_limit_sets_of_another_type_are_set_aside(
    capped: Client, redis: Redis, keys: Keys
) -> None:
    """Anything in Redis is untrusted: a string where a group's slots, its waiting jobs,
    a rate's waiting jobs or the rates' wake-ups should be is moved aside, and claims,
    ends and cancels go on (a crash halfway through a claim would lose jobs)."""
    prefix = keys.due_prefix
    for name in ("slots:echo", "capped:echo", "rated:echo", "ratewake"):
        await redis.set(f"{prefix}{name}", "junk")
    ids = [await capped.enqueue("echo", [n], job_id=f"m{n}") for n in range(3)]
    assert await _claim(capped, "d1") == ["m0", "m1"]
    assert await redis.get(f"{prefix}slots:echo:malformed") == "junk"
    assert await redis.get(f"{prefix}capped:echo:malformed") == "junk"
    assert await redis.get(f"{prefix}ratewake:malformed") == "junk"
    await redis.set(f"{prefix}slots:echo", "junk again")
    await _finish(capped, redis, keys, "d1", "m0")
    assert (await capped.request("cancel", ids[1:]))[0].ok
