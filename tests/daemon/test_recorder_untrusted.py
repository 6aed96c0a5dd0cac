"""The transition stream holds what anyone wrote: the recorder never stops on it.

An entry without the `e` field, one that is not JSON, events of the wrong
shape or with a detail Postgres rejects: the good entries beside them are
recorded, the bad ones move to the dead-letter stream with the reason, and the
stream is left empty, acknowledged, for the next batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.daemon.recorder import Recorder
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.store.redis.test_scripts import NOW, new_job
from tests.unrecorded import unrecorded

FOREIGN = [
    {"x": "1"},
    {"e": "not json"},
    {"e": '[{"an": "object"}]'},
    {"e": '[["j", "not-a-number", "", "scheduled", 1, "", 0, "{}"]]'},
    {"e": '[["j2", 1, "", null, 1, "", 0, "{}"]]'},
]


def recorder(store: RedisStore, pg: PgStore) -> Recorder:
    return Recorder(store, pg_store=pg, consumer="c1", batch_events=100, flush_interval=0.05)


async def test_foreign_entries_are_set_aside_and_the_good_ones_recorded(
    store: RedisStore, redis: Redis, keys: Keys, pg: PgStore
) -> None:
    """Five kinds of foreign entry around two good ones: the good jobs' events reach
    Postgres, each foreign entry lands in the dead-letter stream with a reason."""
    await store.ensure_event_group()
    await store.enqueue(new_job("before"), "client", NOW)
    for fields in FOREIGN:
        await redis.xadd(keys.events, fields)  # type: ignore[arg-type]  # plain str fields
    await store.enqueue(new_job("after"), "client", NOW)
    await recorder(store, pg).drain()
    for job_id in ("before", "after"):
        assert [h["to_state"] for h in await pg.job_history(job_id)] == ["scheduled"]
    dead: Any = await redis.xrange(keys.dead_events)
    assert len(dead) == len(FOREIGN)
    assert all(fields["reason"] and fields["entry_id"] for _, fields in dead)
    assert await unrecorded(redis, keys) == 0
    pending = await redis.xpending(keys.events, keys.recorder_group)
    assert pending["pending"] == 0
    assert await store.dead_letter_counts() == {"jobs": 0, "events": len(FOREIGN)}


async def test_an_event_whose_detail_postgres_rejects_is_kept_with_its_detail_replaced(
    store: RedisStore, redis: Redis, keys: Keys, pg: PgStore
) -> None:
    """A detail that is not JSON: the transition itself is recorded, the detail
    replaced by a note holding the original text."""
    await store.ensure_event_group()
    event = ["j3", 1, "", "scheduled", NOW, "x", 0, "{not json"]
    await redis.xadd(keys.events, {"e": orjson.dumps([event]).decode()})
    await recorder(store, pg).drain()
    [row] = await pg.job_history("j3")
    assert row["to_state"] == "scheduled"
    assert row["detail"] == {"undecodable_detail": "{not json"}


async def test_two_recorders_on_overlapping_jobs_never_deadlock(pg: PgStore) -> None:
    """Two daemons' batches touch the same jobs in opposite orders at the same time;
    rows are written in key order, so Postgres never has to break a deadlock."""
    ids = [f"job-{n:04d}" for n in range(1000)]

    def batch(seq: int, order: list[str]) -> str:
        events = [
            [job_id, s, "", "scheduled" if s == 1 else "running", NOW + s, "d", 0, "{}"]
            for job_id in order
            for s in (seq, seq + 1)
        ]
        return orjson.dumps(events).decode()

    for seq in range(1, 40, 4):
        await asyncio.gather(
            pg.write_events([batch(seq, ids)]),
            pg.write_events([batch(seq + 2, ids[::-1])]),
        )
    count = await pg.pool.fetchval("SELECT count(*) FROM runner_job_events")
    assert count == len(ids) * 40
