"""A daemon records the events another daemon read and never recorded (it stopped)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from runner.store.redis.store import RedisStore
from tests.daemon.harness import Running
from tests.waiting import eventually


async def _first_events(pg: PgStore, ids: list[str]) -> list[str]:
    """The jobs among `ids` whose first event (seq 1, the enqueue) Postgres holds."""
    rows = await pg.pool.fetch(
        "SELECT job_id FROM runner_job_events WHERE seq = 1 AND job_id = ANY($1)", ids
    )
    return sorted(row["job_id"] for row in rows)


async def _all_first_events(pg: PgStore, ids: list[str]) -> list[str] | None:
    found = await _first_events(pg, ids)
    return found if len(found) == len(ids) else None


async def test_a_daemon_takes_over_the_unrecorded_events_of_a_stopped_one(
    client: Client, make_settings: Callable[..., Settings], store: RedisStore, pg: PgStore
) -> None:
    """Five enqueue events read by a daemon that then died (pending on its consumer in
    the group, never acknowledged): the stream's group has moved past them, so only a
    takeover records them. Another daemon does, once they have been idle for its
    reclaim_after, and nothing is left pending on the dead consumer."""
    ids = [await client.enqueue("echo", [i]) for i in range(5)]
    await store.ensure_event_group()
    read = await store.read_events("host:1:dead", 100, None)
    assert sum(len(orjson.loads(entry.payload or "[]")) for entry in read) == 5
    assert await _first_events(pg, ids) == []
    async with Running(make_settings(recorder_reclaim_after=0.3)):
        recorded = await eventually(
            lambda: _all_first_events(pg, ids), what="the dead daemon's events recorded"
        )
    assert recorded == sorted(ids)
    pending = await store.redis.xpending(store.keys.events, store.keys.recorder_group)
    assert pending["pending"] == 0
