"""The feed follows the transition stream: named, filtered, resumable, never polling."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from redis.asyncio import Redis

from runner.events.feed import Feed
from runner.events.filters import TransitionFilter
from runner.events.transition import Transition, split_position
from runner.jobs import Outcome
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.store.redis.test_scripts import NOW, new_job

DAEMON = "d1"


async def _run(store: RedisStore, job_id: str) -> None:
    """Enqueue, claim and succeed one job: three transitions in three entries."""
    await store.enqueue(new_job(job_id), "client", NOW)
    claimed = await store.claim_due(NOW, {"async": 1, "io": 0, "cpu": 0}, DAEMON, NOW + 30_000)
    (job,) = claimed.jobs
    await store.finish(
        NOW, DAEMON, [Outcome(job.id, job.attempt, job.claim, "succeed", result_json="7",
                              detail_json='{"result":7,"duration_ms":1}')]
    )  # fmt: skip


async def test_a_feed_started_now_sees_only_what_is_written_after(store: RedisStore) -> None:
    """Transitions written before the start are not replayed; those after are, in
    order, each with its job's task, though only the first event names it."""
    await _run(store, "before")
    feed = Feed(store, block_ms=1000)
    await feed.start_now()
    await _run(store, "after")
    seen: list[Transition] = []
    while len(seen) < 3:
        seen += await feed.next_batch()
    assert [(t.job_id, t.to_state, t.task) for t in seen] == [
        ("after", "scheduled", "echo"),
        ("after", "running", "echo"),
        ("after", "succeeded", "echo"),
    ]
    assert seen[2].as_json()["result"] == 7 and seen[2].event_id == "after:3"


async def test_a_feed_resumes_after_a_position_without_loss_or_repeat(store: RedisStore) -> None:
    """Resuming after the first event of a batch gives the rest of that entry, then
    what follows: each event once."""
    feed = Feed(store, block_ms=200)
    await feed.start_now()
    await store.enqueue_many([new_job(f"m{n}") for n in range(3)], "client", NOW)
    first = await feed.next_batch()
    assert [t.job_id for t in first] == ["m0", "m1", "m2"]
    again = Feed(store, block_ms=200)
    rest, gap = await again.start_after(first[0].position)
    assert gap is None and [t.job_id for t in rest] == ["m1", "m2"]
    await store.enqueue(new_job("m3"), "client", NOW)
    assert [t.job_id for t in await again.next_batch()] == ["m3"]


async def test_a_position_trimmed_away_is_reported_as_a_gap(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """A reader back after the stream was trimmed past its position learns the first
    entry still kept, rather than silently missing events."""
    await store.ensure_event_group()
    await store.enqueue(new_job("old"), "client", NOW)
    old = await store.read_events("c1", 10, None)
    await store.ack_events([e.id for e in old])
    await store.trim_events(keep_ms=0, now_ms=int(time.time() * 1000) + 1)
    await store.enqueue(new_job("new"), "client", NOW)
    feed = Feed(store, block_ms=100)
    rest, gap = await feed.start_after(f"{old[0].id}/0")
    assert rest == [] and gap is not None and gap.first_kept != old[0].id
    assert [t.job_id for t in await feed.next_batch()] == ["new"]


async def test_a_filter_keeps_only_the_tasks_jobs_and_states_asked_for(
    store: RedisStore,
) -> None:
    """A filter by state and job id drops every other transition."""
    feed = Feed(store, TransitionFilter.of(job_ids=["b"], states=["succeeded"]), block_ms=500)
    await feed.start_now()
    await _run(store, "a")
    await _run(store, "b")
    kept: list[Transition] = []
    deadline = time.monotonic() + 5
    while not kept and time.monotonic() < deadline:
        kept += await feed.next_batch()
    assert [(t.job_id, t.to_state) for t in kept] == [("b", "succeeded")]


async def test_a_waiting_feed_blocks_in_redis_instead_of_polling(
    store: RedisStore, redis: Redis
) -> None:
    """Waiting a second for a transition costs one blocking read, not a loop."""
    feed = Feed(store, block_ms=1000)
    await feed.start_now()
    before = await _commands(redis)
    assert await feed.next_batch() == []
    assert await _commands(redis) - before == 1


async def _commands(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_xread"))


def test_a_position_that_is_not_one_is_refused() -> None:
    """Last-Event-ID is input: anything but '<ms>-<n>/<index>' is a ValueError."""
    assert split_position("1-2/3") == ("1-2", 3)
    for bad in ("", "1-2", "x-1/0", "1-2/-1", "1/0"):
        try:
            split_position(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


async def test_the_feed_wakes_when_an_entry_arrives(store: RedisStore) -> None:
    """A blocked read returns as soon as a transition is written, not at its timeout."""
    feed = Feed(store, block_ms=5000)
    await feed.start_now()
    reading = asyncio.create_task(feed.next_batch())
    await asyncio.sleep(0.2)
    began = time.monotonic()
    await store.enqueue(new_job("wake"), "client", NOW)
    batch = await reading
    assert [t.job_id for t in batch] == ["wake"] and time.monotonic() - began < 2.0


async def _run_in(store: RedisStore, job_id: str, queue: str) -> None:
    """_run, in `queue`."""
    await store.enqueue(replace(new_job(job_id), queue=queue), "client", NOW)
    view = store.queue(queue)
    claimed = await view.claim_due(NOW, {"async": 1, "io": 0, "cpu": 0}, DAEMON, NOW + 30_000)
    (job,) = claimed.jobs
    await store.finish(
        NOW, DAEMON, [Outcome(job.id, job.attempt, job.claim, "succeed", result_json="7",
                              detail_json='{"result":7,"duration_ms":1}', queue=queue)]
    )  # fmt: skip


async def test_a_feed_of_every_queue_follows_them_all_and_resumes_in_any(
    store: RedisStore,
) -> None:
    """Each queue has its stream: the feed follows all, a queue made after it
    started included; a position names its queue, and resuming after one of another
    queue loses nothing written after it."""
    await _run_in(store, "old", "mail")  # "mail" exists before the feed starts
    feed = Feed(store, block_ms=300, every_queue=True)
    await feed.start_now()
    await _run(store, "d1")
    await _run_in(store, "m1", "mail")
    await _run_in(store, "n1", "brand-new")
    seen: list[Transition] = []
    for _ in range(20):
        seen += await feed.next_batch()
        if len(seen) >= 9:
            break
    assert sorted({t.job_id for t in seen}) == ["d1", "m1", "n1"] and len(seen) == 9
    mail = [t for t in seen if t.job_id == "m1"]
    assert all(t.position.startswith("mail@") for t in mail)
    assert all("@" not in t.position for t in seen if t.job_id == "d1")
    again = Feed(store, block_ms=300, every_queue=True)
    rest, gap = await again.start_after(mail[0].position)
    while batch := await again.next_batch():
        rest += batch
    after = {(t.job_id, t.seq) for t in rest}
    assert {("m1", 2), ("m1", 3), ("n1", 1), ("n1", 2), ("n1", 3)} <= after
    assert ("m1", 1) not in after and gap is None
