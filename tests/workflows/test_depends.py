"""Dependencies between jobs on real Redis: a job enqueued with depends_on waits
`blocked` until every one of them ended, then becomes due; a dependency that did not
succeed applies the job's on_failure at once; the join is one step of the script
that ends the dependency, so it happens exactly once; an unknown id or a cycle is
refused with the ids named."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.errors import UnknownDependency, UsageError
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys

LEASE_MS = 60_000


async def _claim(client: Client, count: int = 50, daemon: str = "d1") -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": count}, daemon, now + LEASE_MS)
    return sorted(job.id for job in found.jobs)


async def _end(client: Client, redis: Redis, keys: Keys, job_id: str, action: str = "succeed",
               daemon: str = "d1") -> None:  # fmt: skip
    seq, attempt = await redis.hmget(keys.job(job_id), ["q", "n"])
    outcome = Outcome(job_id, int(str(attempt)), int(str(seq)), action)
    assert await client.store.finish(client.clock.now_ms(), daemon, [outcome]) == [1]


async def _states(client: Client, *ids: str) -> list[str]:
    states = await client.store.job_states(list(ids))
    return [states.get(i, "?") for i in ids]


async def test_a_chain_runs_in_order(client: Client, redis: Redis, keys: Keys) -> None:
    a = await client.enqueue("echo", [1], job_id="a")
    b = await client.enqueue("echo", [2], job_id="b", depends_on=[a])
    c = await client.enqueue("echo", [3], job_id="c", depends_on=[b])
    assert await _states(client, a, b, c) == ["scheduled", "blocked", "blocked"]
    assert await _claim(client) == ["a"]
    await _end(client, redis, keys, a)
    assert await _claim(client) == ["b"]
    await _end(client, redis, keys, b)
    assert await _claim(client) == ["c"]


async def test_a_join_fires_once_when_the_last_of_ten_ends(
    client: Client, redis: Redis, keys: Keys
) -> None:
    children = [await client.enqueue("echo", [n], job_id=f"k{n}") for n in range(10)]
    join = await client.enqueue("echo", ["join"], job_id="join", depends_on=children)
    assert len(await _claim(client)) == 10
    for n, child in enumerate(children):
        await _end(client, redis, keys, child, daemon="d1")
        expected = "scheduled" if n == 9 else "blocked"
        assert await _states(client, join) == [expected]
    assert await _claim(client) == ["join"]


@pytest.mark.parametrize(
    ("end", "policy", "expected"),
    [
        ("fail", "cancel", "cancelled"), ("fail", "fail", "failed"), ("fail", "run", "scheduled"),
        ("cancel", "cancel", "cancelled"), ("cancel", "fail", "failed"),
        ("cancel", "run", "scheduled"), ("delete", "cancel", "cancelled"),
        ("delete", "fail", "failed"), ("delete", "run", "scheduled"),
    ],
)  # fmt: skip
async def test_each_policy_for_a_failing_a_cancelled_and_a_deleted_dependency(
    client: Client, redis: Redis, keys: Keys, end: str, policy: str, expected: str
) -> None:
    dep = await client.enqueue("echo", [1], job_id="dep", delay=60 if end == "delete" else None)
    job = await client.enqueue("echo", [2], job_id="job", depends_on=[dep], on_failure=policy)
    after = await client.enqueue("echo", [3], job_id="after", depends_on=[job])
    if end == "fail":
        assert await _claim(client) == ["dep"]
        await _end(client, redis, keys, dep, "fail")
    elif end == "cancel":
        assert (await client.request("cancel", [dep]))[0].ok
    else:
        assert (await client.request("delete", [dep]))[0].ok
    assert await _states(client, job) == [expected]
    # A job ended by its policy releases its own dependents in turn.
    assert await _states(client, after) == ["blocked" if expected == "scheduled" else "cancelled"]


async def test_a_dependency_that_ended_already_is_judged_at_enqueue(
    client: Client, redis: Redis, keys: Keys
) -> None:
    ok = await client.enqueue("echo", [1], job_id="ok")
    bad = await client.enqueue("echo", [2], job_id="bad")
    assert await _claim(client) == ["bad", "ok"]
    await _end(client, redis, keys, ok)
    await _end(client, redis, keys, bad, "fail")
    assert (await client.enqueue_result("echo", job_id="x", depends_on=[ok])).state == "scheduled"
    made = await client.enqueue_result("echo", job_id="y", depends_on=[ok, bad])
    assert made.state == "cancelled"
    ran = await client.enqueue_result("echo", job_id="z", depends_on=[bad], on_failure="run")
    assert ran.state == "scheduled"


async def test_an_unknown_id_and_a_cycle_are_refused_naming_the_ids(client: Client) -> None:
    with pytest.raises(UnknownDependency, match="depends on 'nobody'"):
        await client.enqueue("echo", depends_on=["nobody"])
    jobs = [client.new_job("echo", job_id="p", depends_on=["q"]),
            client.new_job("echo", job_id="q", depends_on=["p"])]  # fmt: skip
    with pytest.raises(UnknownDependency, match=r"cycle: (p -> q -> p|q -> p -> q)"):
        await client.enqueue_many(jobs)
    assert await client.store.job_states(["p", "q"]) == {}


async def test_a_batch_may_depend_on_its_own_jobs_in_any_order(
    client: Client, redis: Redis, keys: Keys
) -> None:
    jobs = [client.new_job("echo", job_id="last", depends_on=["g1", "g2"]),
            client.new_job("echo", job_id="g1"), client.new_job("echo", job_id="g2")]  # fmt: skip
    assert await client.enqueue_many(jobs) == ["last", "g1", "g2"]
    assert await _states(client, "last", "g1", "g2") == ["blocked", "scheduled", "scheduled"]
    assert await _claim(client) == ["g1", "g2"]
    await _end(client, redis, keys, "g1")
    await _end(client, redis, keys, "g2")
    assert await _claim(client) == ["last"]


async def test_a_blocked_job_can_be_updated_paused_cancelled_and_deleted(
    make_settings: Callable[..., Settings], client: Client, redis: Redis, keys: Keys, pg: PgStore
) -> None:
    dep = await client.enqueue("echo", [1], job_id="d")
    ids = [await client.enqueue("echo", [n], job_id=f"w{n}", depends_on=[dep]) for n in range(3)]
    assert (await client.request("update", ids[:1], args=[9]))[0].ok
    assert (await client.request("cancel", ids[1:2]))[0].ok
    assert (await client.request("delete", ids[2:3]))[0].ok
    assert await client.pause(ids[0]) == "paused"
    assert await client.resume(ids[0]) == "blocked"  # still waiting for d
    assert await client.pause(ids[0]) == "paused"
    assert await _claim(client) == ["d"]
    await _end(client, redis, keys, dep)
    assert await _claim(client) == []  # released, but held by its pause
    assert await client.resume(ids[0]) == "scheduled"
    assert await _claim(client) == ["w0"]


async def test_a_job_depends_only_on_jobs_of_its_own_queue(client: Client) -> None:
    elsewhere = await client.enqueue("echo", queue="other", job_id="elsewhere")
    with pytest.raises(UsageError, match="can depend only on jobs of its own queue"):
        await client.enqueue("echo", depends_on=[elsewhere])


async def test_a_dependency_set_aside_as_malformed_releases_its_dependents(
    client: Client, redis: Redis, keys: Keys
) -> None:
    """A running dependency whose hash turned malformed is set aside, failed, by the
    script that ends it: its dependents are judged by it at once (cancelled here, the
    default), never left waiting for good."""
    dep = await client.enqueue("echo", [1], job_id="bad-dep")
    after = await client.enqueue("echo", [2], job_id="after-bad", depends_on=[dep])
    assert await _claim(client) == ["bad-dep"]
    seq = await redis.hget(keys.job(dep), "q")
    await redis.hset(keys.job(dep), "n", "not a number")  # its attempt, malformed
    outcome = Outcome(dep, 1, int(str(seq)), "succeed")
    assert await client.store.finish(client.clock.now_ms(), "d1", [outcome]) == [2]
    assert await _states(client, dep, after) == ["failed", "cancelled"]
