"""A read of the stream can bring far more events than a batch (each enqueue call is
one entry of up to a thousand events, another program's may hold more): the recorder
writes them in statements of at most `batch_events` events, so none can outlast
Postgres' command timeout, and the client sends a huge enqueue_many in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from runner.client.client import Client
from runner.daemon.recorder import Recorder, count_events, event_chunks
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from runner.store.redis.stream import StreamEntry
from tests.store.redis.test_scripts import NOW, new_job
from tests.unrecorded import unrecorded


def entry(events: int) -> StreamEntry:
    return StreamEntry(str(events), "[" + ",".join(['["j",1]'] * events) + "]", {})


def test_event_chunks_hold_at_most_the_batch_and_keep_the_order() -> None:
    """An entry of more events than the batch is cut into parts, in order."""
    entries = [entry(n) for n in (1500, 400, 100, 1, 5000, 2000, 7)]
    chunks = event_chunks(entries, 2000)
    assert [[(e.id, count_events(e.payload or "")) for e in chunk] for chunk in chunks] == [
        [("1500", 1500), ("400", 400), ("100", 100)], [("1", 1)], [("5000", 2000)],
        [("5000", 2000)], [("5000", 1000)], [("2000", 2000)], [("7", 7)],
    ]  # fmt: skip
    assert event_chunks([], 2000) == []
    broken = StreamEntry("x", "[" * 3000, {})  # not JSON: whole, for the writer to set aside
    assert event_chunks([broken], 2000) == [[broken]]


async def test_entries_of_thousands_of_events_are_recorded_in_bounded_statements(
    store: RedisStore, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    for part in range(3):
        await store.enqueue_many([new_job(f"p{part}-{n}") for n in range(1500)], "c", NOW)
    recorder = Recorder(store, pg_store=pg, consumer="c1", batch_events=2000, flush_interval=0.05)
    await store.ensure_event_group()
    sizes: list[int] = []
    write = pg.record

    async def counted(batches: Sequence[str]) -> list[tuple[str, int, str]]:
        sizes.append(sum(batch.count(',["') + 1 for batch in batches))
        return await write(batches)

    pg.record = counted  # type: ignore[method-assign]  # counts, then the real write
    await recorder.drain()
    assert sizes == [1500, 1500, 1500]
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_jobs") == 4500
    assert await unrecorded(redis, keys) == 0


async def test_a_chunks_redis_steps_run_while_the_next_statement_is_written(
    store: RedisStore, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """Three chunks: the first chunk's acknowledgement waits here until the second
    statement has begun, which happens only if a chunk's Redis steps run beside the
    next statement (one after the other, this test times out). Each acknowledgement
    still comes after its own chunk's commit."""
    for part in range(3):
        await store.enqueue_many([new_job(f"p{part}-{n}") for n in range(1500)], "c", NOW)
    recorder = Recorder(store, pg_store=pg, consumer="c1", batch_events=2000, flush_interval=0.05)
    await store.ensure_event_group()
    second_begun = asyncio.Event()
    statements = 0
    rows_when_acked: list[int] = []
    write, ack = pg.record, recorder.streams.ack_events

    async def written(batches: Sequence[str]) -> list[tuple[str, int, str]]:
        nonlocal statements
        statements += 1
        if statements == 2:
            second_begun.set()
        return await write(batches)

    async def acked(entries: Sequence[StreamEntry]) -> None:
        if not rows_when_acked:
            await asyncio.wait_for(second_begun.wait(), 10)
        rows_when_acked.append(int(await pg.pool.fetchval("SELECT count(*) FROM runner_jobs")))
        await ack(entries)

    pg.record = written  # type: ignore[method-assign]  # counts, then the real write
    recorder.streams.ack_events = acked  # type: ignore[method-assign]  # waits, then acks
    assert await recorder.record_batch(block=False) == 4500
    assert len(rows_when_acked) == 3
    assert all(rows >= 1500 * n for n, rows in enumerate(rows_when_acked, start=1))
    assert await unrecorded(redis, keys) == 0


async def test_one_entry_larger_than_the_batch_is_written_in_parts_then_acknowledged(
    store: RedisStore, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """One entry of 5,000 events (one script call, as another program may make): three
    statements of at most 2,000, and the entry stays pending until the last one."""
    await store.enqueue_many([new_job(f"big-{n}") for n in range(5000)], "c", NOW)
    recorder = Recorder(store, pg_store=pg, consumer="c1", batch_events=2000, flush_interval=0.05)
    await store.ensure_event_group()
    sizes: list[int] = []
    pending: list[int] = []
    write = pg.record

    async def counted(batches: Sequence[str]) -> list[tuple[str, int, str]]:
        sizes.append(sum(count_events(batch) for batch in batches))
        pending.append((await redis.xpending(keys.events, "recorder"))["pending"])
        return await write(batches)

    pg.record = counted  # type: ignore[method-assign]  # counts, then the real write
    await recorder.drain()
    assert sizes == [2000, 2000, 1000]
    assert pending == [1, 1, 1]  # not acknowledged before its last part was written
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_jobs") == 5000
    assert (await redis.xpending(keys.events, "recorder"))["pending"] == 0


async def test_a_huge_enqueue_many_is_sent_in_bounded_batches(
    client: Client, redis: Redis, keys: Keys
) -> None:
    """2,500 jobs in one enqueue_many: three script calls, three stream entries of at
    most a thousand events, every job created."""
    jobs = [client.new_job("noop") for _ in range(2500)]
    results = await client.enqueue_many_results(jobs)
    assert [r.created for r in results] == [True] * 2500
    entries = await redis.xrange(keys.events) or []
    assert [count_events(str((fields or {})["e"])) for _, fields in entries] == [1000, 1000, 500]
