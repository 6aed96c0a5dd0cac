"""What waits for a resume, as a drain reads it when it ends: held jobs per paused
task and jobs paused one by one, whatever else lies under the job prefix."""

from __future__ import annotations

from redis.asyncio import Redis

from runner.client.client import Client
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from runner.store.redis.waiting import WaitingForResume


async def test_held_and_paused_jobs_are_counted_and_foreign_keys_skipped(
    client: Client, store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A paused task with held jobs is counted, one with none is left out, maintenance
    mode is no task; paused jobs are counted among scheduled ones, past a key of
    another type under the job prefix and across several scan rounds."""
    assert await store.waiting_for_resume() == WaitingForResume({}, 0)
    assert not await store.waiting_for_resume()
    ids = [await client.enqueue("noop", delay=600) for _ in range(1200)]
    for job_id in ids[:3]:
        await client.pause(job_id)
    await client.pause_task("echo")
    await client.pause_task("sleep_io")
    await client.pause_all()
    await redis.zadd(keys.held("echo"), {"e1": 1, "e2": 2})
    await redis.set(keys.job("not-a-hash"), "x")
    waiting = await store.waiting_for_resume()
    assert waiting == WaitingForResume({"echo": 2}, 3) and waiting


async def test_every_queue_is_counted(client: Client, store: RedisStore, redis: Redis) -> None:
    """Held and paused jobs of other queues count too; those of another prefix do not."""
    await client.pause(await client.enqueue("noop", delay=600, queue="mail"))
    await client.pause(await client.enqueue("noop", delay=600))
    await client.pause_task("echo")
    await client.enqueue("echo", queue="mail")
    await client.enqueue("echo", queue="other")
    now = client.clock.now_ms()
    for queue in ("mail", "other"):  # a claim moves the paused task's due jobs aside
        await store.queue(queue).claim_due(now, {"async": 5, "io": 0, "cpu": 0}, "d", now + 5000)
    await redis.hset("{elsewhere}:job:x", "s", "paused")
    assert await store.waiting_for_resume() == WaitingForResume({"echo": 2}, 2)
    await redis.delete("{elsewhere}:job:x")
