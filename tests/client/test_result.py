"""`Client.result` and `runner wait`: a job's end, awaited without polling Redis.

The jobs reach their end states through the store's own verbs (claim, finish) and
the client's requests, while the waiter is blocked, as a daemon would move them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.errors import JobFailed, JobNotFound, ResultTimeout
from runner.jobs import Outcome
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli

DAEMON = "d1"


async def _end(client: Client, store: RedisStore, job_id: str, how: str) -> None:
    """Take the job to an end: run it to success or failure, or cancel or delete it."""
    if how in ("cancelled", "deleted"):
        request = client.cancel if how == "cancelled" else client.delete
        await request(job_id)
        return
    claimed: list[Any] = []
    deadline = time.monotonic() + 5
    while not claimed and time.monotonic() < deadline:  # due a moment after the last
        now = client.clock.now_ms()
        claimed = (await store.claim_due(now, {"async": 1}, DAEMON, now + 60_000)).jobs
    (job,) = claimed
    outcome = (
        Outcome(job.id, job.attempt, job.claim, "succeed", result_json='{"n": 7}',
                detail_json='{"result":{"n":7},"duration_ms":1}')
        if how == "succeeded"
        else Outcome(job.id, job.attempt, job.claim, "fail", error="ValueError('bad')",
                     detail_json='{"error":"ValueError(\'bad\')"}')
    )  # fmt: skip
    await store.finish(now, DAEMON, [outcome])


@pytest.mark.parametrize("how", ["succeeded", "failed", "cancelled", "deleted"])
async def test_result_wakes_when_the_job_ends(client: Client, store: RedisStore, how: str) -> None:
    """A waiter blocked on a job gets its result, or an error carrying the state it
    ended in and its error, as soon as it ends."""
    job_id = await client.enqueue("echo", ["x"])
    waiter = asyncio.create_task(client.result(job_id, timeout=10))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    began = time.monotonic()
    await _end(client, store, job_id, how)
    if how == "succeeded":
        assert await waiter == {"n": 7}
    else:
        with pytest.raises(JobFailed) as failed:
            await waiter
        assert failed.value.state == how and failed.value.job_id == job_id
        assert (failed.value.error == "ValueError('bad')") == (how == "failed")
    assert time.monotonic() - began < 2.0


async def test_a_job_already_ended_answers_at_once(client: Client, store: RedisStore) -> None:
    """No wait at all for a job that has ended already."""
    job_id = await client.enqueue("echo", ["x"])
    await _end(client, store, job_id, "succeeded")
    assert await client.result(job_id, timeout=0.01) == {"n": 7}


async def test_a_job_still_waiting_at_the_timeout_raises_with_its_state(client: Client) -> None:
    """A timeout is a ResultTimeout (also a TimeoutError) naming the job's state."""
    job_id = await client.enqueue("echo", ["x"], delay=600)
    with pytest.raises(ResultTimeout) as timed_out:
        await client.result(job_id, timeout=0.3)
    assert timed_out.value.state == "scheduled" and isinstance(timed_out.value, TimeoutError)
    with pytest.raises(JobNotFound):
        await client.result("no-such-job", timeout=0.3)


async def test_waiting_sends_no_command_loop_to_redis(client: Client, redis: Redis) -> None:
    """While nothing happens to the job, waiting 3 s costs the same few commands as
    waiting 0.5 s (reading where the stream ends, reading the job): the wait itself
    is one read blocked in Redis, seen in CLIENT LIST, not a command every few
    milliseconds. (Redis counts a blocked read only once it returns.)"""
    job_id = await client.enqueue("echo", ["x"], delay=600)
    short = await _commands_during(redis, client.result(job_id, timeout=0.5))
    waiting = asyncio.create_task(_commands_during(redis, client.result(job_id, timeout=3.0)))
    await asyncio.sleep(1.0)
    blocked = await _blocked_reads(redis)
    assert len(blocked) == 1 and "b" in blocked[0]["flags"]
    long = await waiting
    for counts in (short, long):  # the queue registry, read at most once a second
        counts.pop("smembers", None)
    assert long == short and sum(long.values()) <= 10


async def test_many_waiters_share_one_reader(
    client: Client, store: RedisStore, redis: Redis
) -> None:
    """Five hundred jobs awaited at once are followed by one blocking read on one
    connection of its own, not five hundred; each waiter gets its own job's result,
    and once none waits, the reader's connection is closed."""
    ids = [await client.enqueue("echo", [n]) for n in range(500)]
    waiters = [asyncio.create_task(client.result(job_id, timeout=20)) for job_id in ids]
    await asyncio.sleep(0.5)
    assert len(await _blocked_reads(redis)) == 1
    now = client.clock.now_ms()
    claimed = (await store.claim_due(now, {"async": 500}, DAEMON, now + 60_000)).jobs
    await store.finish(now, DAEMON, [
        Outcome(j.id, j.attempt, j.claim, "succeed", result_json=f'"{j.id}"',
                detail_json=f'{{"result":"{j.id}","duration_ms":1}}')
        for j in claimed
    ])  # fmt: skip
    assert await asyncio.gather(*waiters) == ids
    await asyncio.sleep(0.2)
    assert await _blocked_reads(redis) == []


async def _blocked_reads(redis: Redis) -> list[dict[str, Any]]:
    return [c for c in await redis.client_list() if c.get("cmd") == "xread"]


async def _commands_during(redis: Redis, waiting: Any) -> dict[str, int]:
    before = await _command_counts(redis)
    with pytest.raises(ResultTimeout):
        await waiting
    after = await _command_counts(redis)
    counts = {name: after[name] - before.get(name, 0) for name in after}
    counts["info"] = counts.get("info", 0) - 1  # the second INFO is ours
    counts.pop("client|list", None)  # the test's own look
    return {name: n for name, n in counts.items() if n > 0}


async def _command_counts(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


async def test_runner_wait_exits_0_1_or_3(
    client: Client, store: RedisStore, daemon_config: Callable[..., Path]
) -> None:
    """`runner wait`: 0 and the result for a success, 1 for a failure or a
    cancellation, 3 for a timeout; --json says the same to a script."""
    config = daemon_config()
    # Due one after the other, so each claim below takes the job meant.
    ids = {"succeeded": await client.enqueue("echo", ["x"]),
           "failed": await client.enqueue("echo", ["x"], delay=0.3)}  # fmt: skip
    later = await client.enqueue("echo", ["x"], delay=600)
    cancelled = await client.enqueue("echo", ["x"], delay=600)

    async def call(*args: str) -> Any:
        return await asyncio.to_thread(cli, "wait", *args, config=config)

    waiting = [
        asyncio.create_task(call(ids["succeeded"], "--timeout", "20s")),
        asyncio.create_task(call(ids["failed"], "--timeout", "20s", "--json")),
        asyncio.create_task(call(cancelled, "--timeout", "20s")),
    ]
    timed_out = await call(later, "--timeout", "0.5")
    await _end(client, store, ids["succeeded"], "succeeded")
    await _end(client, store, ids["failed"], "failed")
    await _end(client, store, cancelled, "cancelled")
    succeeded, failed, was_cancelled = await asyncio.gather(*waiting)
    assert (succeeded.returncode, succeeded.stdout.strip()) == (0, '{"n":7}')
    assert failed.returncode == 1 and '"state":"failed"' in failed.stdout
    assert was_cancelled.returncode == 1 and "ended cancelled" in was_cancelled.stdout
    assert timed_out.returncode == 3 and "still scheduled after 0.5" in timed_out.stdout
    usage = await call(later, "--timeout", "-1")
    assert usage.returncode == 2 and "--timeout" in usage.stderr
