"""Named queues in Redis: each queue's keys in a slot of its own, the default queue
on the keys of a runner from before queues, and every verb on a job finding the
queue it is in (real Redis, the suite's server)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.crc import key_slot

from runner.client.client import Client
from runner.jobs import NewJob
from runner.store import Keys, RedisStore

KINDS = ("async", "io", "cpu")


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_each_queue_has_a_slot_and_the_default_queue_keeps_the_old_keys() -> None:
    default, emails = Keys("app"), Keys("app", "emails")
    assert default.due("io") == "{app}:due:io" and default.events == "{app}:events"
    assert default.job("j1") == "{app}:job:j1"  # as before queues: nothing to move
    assert emails.due("io") == "{app:q:emails}:due:io"
    queue_keys = [*emails.due_every, emails.leases, emails.events, emails.job("j1"),
                  emails.held("t"), emails.retired, emails.paused, emails.cron_state,
                  emails.wake_channel, emails.cancel_channel]  # fmt: skip
    assert {_slot(k) for k in queue_keys} == {_slot(emails.events)}
    assert _slot(emails.events) != _slot(default.events)
    control = [emails.queues, emails.daemons, emails.daemon_info, emails.sources,
               emails.notify_lease("s"), default.paused]  # fmt: skip
    assert {_slot(k) for k in control} == {_slot(default.events)}  # the control slot


async def test_jobs_go_to_their_tasks_queue_or_the_one_the_enqueue_names(
    client: Client, store: RedisStore, redis: Redis, prefix: str
) -> None:
    routed = client.settings.tasks["echo"]
    first = await client.enqueue("echo", ["a"])
    second = await client.enqueue("echo", ["b"], queue="emails", priority=7)
    assert routed.queue == "default"
    assert await redis.zscore(Keys(prefix).due("async"), first) is not None
    assert await redis.zscore(Keys(prefix, "emails").due("async", 7), second) is not None
    assert await store.queue_names() == ["default", "emails"]
    job = await client.get(second)
    assert (job.queue, job.priority, job.state) == ("emails", 7, "scheduled")
    assert (await client.get(first)).queue == "default"


async def test_every_request_finds_the_job_in_its_queue(client: Client, store: RedisStore) -> None:
    """pause, resume, update, cancel, retry and delete on jobs of three queues, at once."""
    ids = {q: await client.enqueue("echo", [q], queue=q, delay=60) for q in ("default", "a", "b")}
    everyone = list(ids.values())
    assert {r.state for r in await client.request("pause", everyone)} == {"paused"}
    assert {r.state for r in await client.request("resume", everyone)} == {"scheduled"}
    updated = await client.request("update", everyone, priority=3, kwargs={"x": 1})
    assert all(r.ok for r in updated)
    for queue, job_id in ids.items():
        job = await client.get(job_id)
        assert (job.queue, job.priority, job.kwargs) == (queue, 3, {"x": 1})
    assert {r.state for r in await client.request("cancel", everyone)} == {"cancelled"}
    assert {r.state for r in await client.request("retry", everyone)} == {"scheduled"}
    assert {r.state for r in await client.request("delete", everyone)} == {"deleted"}


async def test_a_paused_task_is_held_in_every_queue_and_released_in_every_queue(
    client: Client, store: RedisStore
) -> None:
    await client.enqueue("echo", ["early"], queue="b")  # queue b exists before the pause
    await client.pause_task("echo")
    jobs = [await client.enqueue("echo", [q], queue=q) for q in ("default", "a", "b")]
    now = client.clock.now_ms()
    limits = {"async": 10, "io": 0, "cpu": 0}
    for queue in ("default", "a", "b"):
        claimed = await store.queue(queue).claim_due(now, limits, "d1", now + 5000)
        assert claimed.jobs == []
    assert await store.held_count("echo") == 4
    await client.resume_task("echo")
    taken = []
    for queue in ("default", "a", "b"):
        claimed = await store.queue(queue).claim_due(now, limits, "d1", now + 5000)
        taken += [job.id for job in claimed.jobs]
    assert set(jobs) <= set(taken) and len(taken) == 4


async def test_a_job_of_the_old_layout_runs_as_it_did(store: RedisStore, redis: Redis) -> None:
    """A job hash and due entry written by a runner from before queues (keys under
    {prefix}, no priority field) is claimed and finished by this one."""
    keys = store.keys
    await redis.hset(keys.job("old-1"), mapping={"t": "echo", "k": "io", "a": "[]", "w": "{}",
                     "d": "1000", "s": "scheduled", "n": "0", "m": "1", "q": "1"})  # fmt: skip
    await redis.zadd(keys.due("io"), {"old-1": 1000})
    claimed = await store.claim_due(2000, {"async": 0, "io": 5, "cpu": 0}, "d1", 60_000)
    assert [(j.id, j.queue) for j in claimed.jobs] == [("old-1", "default")]
    assert (await store.get_job("old-1")).state == "running"  # type: ignore[union-attr]


async def test_an_untrusted_priority_never_stops_a_job(store: RedisStore, redis: Redis) -> None:
    """A priority field someone else wrote (not 1-9) counts as 0: the job runs."""
    job = NewJob("p-1", "echo", "async", "[]", "{}", 1000, 1, queue="x")
    await store.enqueue_many([job], "test", 1000)
    view = store.queue("x")
    await redis.hset(view.keys.job("p-1"), "p", "banana")
    assert (await store.request("pause", ["p-1"], "t", 1500)) == ["ok:paused"]
    assert (await store.request("resume", ["p-1"], "t", 1600)) == ["ok:scheduled"]
    claimed = await view.claim_due(2000, {"async": 5, "io": 0, "cpu": 0}, "d1", 60_000)
    assert [j.id for j in claimed.jobs] == ["p-1"]


def test_the_scripts_whose_callers_know_the_priority_sets_get_them_in_keys() -> None:
    """claim.lua reads every due set, so it is given all 30; an enqueue is given the
    sets of its jobs' priorities; each ends with the prefix that names them in Lua."""
    keys = Keys("app", "mail")
    assert set(keys.due_every) <= set(keys.claim) and keys.claim[-1] == keys.due_prefix
    assert keys.enqueue_for(set()) == keys.enqueue
    batch = keys.enqueue_for({("io", 3), ("cpu", 9)})
    assert batch[-3:] == (keys.due("cpu", 9), keys.due("io", 3), keys.due_prefix)
    assert all(_slot(k) == _slot(keys.events) for k in (*keys.claim, *batch))
