"""A read of the stream can bring far more events than a batch (each enqueue_many call
is one entry of thousands of events): the recorder writes them in statements of at
most `batch_events` events, so none can outlast Postgres' command timeout."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from runner.recorder import Recorder, event_chunks
from runner.store.event_stream import StreamEntry
from runner.store.keys import Keys
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore
from tests.store.test_scripts import NOW, new_job


def entry(events: int) -> StreamEntry:
    return StreamEntry(str(events), "[" + ",".join(['["j",1]'] * events) + "]", {})


def test_event_chunks_hold_at_most_the_batch_and_keep_the_order() -> None:
    entries = [entry(n) for n in (1500, 400, 100, 1, 3000, 2000, 7)]
    chunks = event_chunks(entries, 2000)
    assert [[e.id for e in chunk] for chunk in chunks] == [
        ["1500", "400", "100"], ["1"], ["3000"], ["2000"], ["7"],
    ]  # fmt: skip
    assert event_chunks([], 2000) == []


async def test_entries_of_thousands_of_events_are_recorded_in_bounded_statements(
    store: RedisStore, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    for part in range(3):
        await store.enqueue_many([new_job(f"p{part}-{n}") for n in range(1500)], "c", NOW)
    recorder = Recorder(store, pg_store=pg, consumer="c1", batch_events=2000, flush_interval=0.05)
    await store.ensure_event_group()
    sizes: list[int] = []
    write = pg.write_events

    async def counted(batches: Sequence[str]) -> list[tuple[str, int]]:
        sizes.append(sum(batch.count(',["') + 1 for batch in batches))
        return await write(batches)

    pg.write_events = counted  # type: ignore[method-assign]  # counts, then the real write
    await recorder.drain()
    assert sizes == [1500, 1500, 1500]
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_jobs") == 4500
    assert await redis.xlen(keys.events) == 0
