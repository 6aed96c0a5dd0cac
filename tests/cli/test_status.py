"""`runner status`: the backlog, live daemons and what was set aside, at a glance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from redis.asyncio import Redis

from runner.recorder import Recorder
from runner.store.keys import Keys
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore
from tests.daemon.process import cli
from tests.store.test_scripts import NOW, new_job


async def test_status_counts_what_was_set_aside(
    store: RedisStore,
    redis: Redis,
    keys: Keys,
    pg: PgStore,
    daemon_config: Callable[..., Path],
) -> None:
    """A malformed job and a foreign stream entry, once set aside, are counted by
    `runner status` (JSON and text), beside the backlog and Postgres' state counts."""
    await store.ensure_event_group()
    jobs = [new_job("bad"), new_job("good"), new_job("later", due=NOW * 2)]
    await store.enqueue_many(jobs, "t", NOW)
    await redis.hset(keys.job("bad"), "seq", "x")
    await store.claim_due(NOW, {"async": 1}, "d", NOW + 1000)  # sets "bad" aside
    await redis.xadd(keys.events, {"not-e": "1"})
    await Recorder(store, pg_store=pg, consumer="c", batch_events=10, flush_interval=0.05).drain()
    done = cli("status", "--json", config=daemon_config())
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["set_aside"] == {"jobs": 1, "events": 1}
    assert doc["due"]["async"] == 0 and doc["waiting"]["async"] == 2  # NOW is ahead of the clock
    assert doc["states"] == {"scheduled": 3}
    assert doc["unrecorded_entries"] == 0 and doc["running"] == 0
    text = cli("status", config=daemon_config())
    assert "set aside    1 malformed jobs" in text.stdout
