"""Any job, any time: a finished job that Redis forgot (after keep_finished) can still
be retried or deleted, brought back from its history (runner/store/revival.py); a deleted
job says it was deleted, to a second request and to an enqueue of its id."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.daemon.recorder import Recorder
from runner.errors import RequestRefused
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore


async def _record(store: RedisStore, pg: PgStore) -> None:
    await store.ensure_event_group()
    await Recorder(store, pg_store=pg, consumer="r", batch_events=100, flush_interval=0.05).drain()


async def _forgotten_failure(client: Client, store: RedisStore, pg: PgStore, job_id: str) -> None:
    """The job ran and failed; Postgres recorded it; Redis then forgot it."""
    await client.update(job_id, retries=2, timeout=7)
    now = client.clock.now_ms()
    (job,) = (await store.claim_due(now, {"io": 1}, "d1", now + 60_000)).jobs
    failed = Outcome(job.id, job.attempt, job.claim, "fail", error="boom")
    assert await store.finish(now, "d1", [failed]) == [1]
    await _record(store, pg)
    await client.redis.delete(store.keys.job(job_id))  # as its expiry would


async def test_a_forgotten_failed_job_is_retried_from_its_history(
    client: Client, store: RedisStore, pg: PgStore, redis: Redis, keys: Keys
) -> None:
    """retry brings the job back as recorded (task, kind from the config, args, the
    retries and timeout of its update), continues its seq, and its retry event says who
    asked and that it was revived; the job then runs again under a new claim."""
    await client.enqueue("fail_once", ["why"], job_id="old")
    await _forgotten_failure(client, store, pg, "old")
    assert (await client.get("old")).state == "failed"  # from Postgres
    assert await client.retry("old") == "scheduled"
    held = await store.get_job("old")
    assert held is not None
    assert (held.task, held.state, held.args, held.attempt, held.max_attempts) == (
        "fail_once", "scheduled", ["why"], 0, 3,
    )  # fmt: skip
    assert await redis.hget(keys.job("old"), stored("kind")) == "io"
    assert await redis.hget(keys.job("old"), stored("timeout")) == "7.0"
    assert await redis.pttl(keys.job("old")) == -1  # a live job again: no expiry
    now = client.clock.now_ms()
    (again,) = (await store.claim_due(now, {"io": 1}, "d2", now + 60_000)).jobs
    assert (again.attempt, again.timeout) == (1, 7.0)
    await _record(store, pg)
    history = await pg.job_history("old")
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    retried = history[-2]
    assert (retried["from_state"], retried["to_state"]) == ("failed", "scheduled")
    assert retried["detail"]["by"] == client.origin and retried["detail"]["revived"] is True
    assert history[-1]["to_state"] == "running"


async def test_other_requests_on_a_forgotten_job_are_refused_with_its_state(
    client: Client, store: RedisStore, pg: PgStore
) -> None:
    """pause, resume, cancel and update never apply to a finished job: refused with the
    state it ended in, never naming keep_finished; the job stays forgotten."""
    await client.enqueue("fail_once", [], job_id="done")
    await _forgotten_failure(client, store, pg, "done")
    for action in ("pause", "resume", "cancel"):
        with pytest.raises(RequestRefused) as refused:
            await getattr(client, action)("done")
        assert f"cannot {action} job done: it is failed" in str(refused.value)
        assert "keep_finished" not in str(refused.value)
    with pytest.raises(RequestRefused, match="it is failed"):
        await client.update("done", retries=1)
    assert not await store.job_exists("done")


async def test_a_forgotten_job_of_a_task_no_longer_declared_is_not_revived(
    client: Client, store: RedisStore, pg: PgStore, redis: Redis, settings: Settings
) -> None:
    """Its kind and code are unknown: the retry is refused with its state."""
    await client.enqueue("fail_once", [], job_id="orphan")
    await _forgotten_failure(client, store, pg, "orphan")
    tasks = {name: t for name, t in settings.tasks.items() if name != "fail_once"}
    other = Client(replace(settings, tasks=tasks), redis, pg)
    with pytest.raises(RequestRefused, match="it is failed"):
        await other.retry("orphan")
    assert not await store.job_exists("orphan")


async def test_a_deleted_job_says_so_and_a_forgotten_one_can_be_deleted(
    client: Client, store: RedisStore, pg: PgStore
) -> None:
    """Deleting a forgotten job brings it back for the event (revived); a second
    delete, any other request and an enqueue of the id all say the job was deleted,
    before and after Postgres recorded it."""
    await client.enqueue("fail_once", [], job_id="gone")
    await _forgotten_failure(client, store, pg, "gone")
    assert await client.delete("gone") == "deleted"
    for recorded in (False, True):
        if recorded:
            await _record(store, pg)
        for action in ("delete", "retry", "pause"):
            with pytest.raises(RequestRefused) as refused:
                await getattr(client, action)("gone")
            assert str(refused.value).endswith(f"cannot {action} job gone: it was deleted")
        again = await client.enqueue_result("fail_once", [], job_id="gone")
        assert (again.created, again.state) == (False, "deleted")
    history = await pg.job_history("gone")
    assert history[-1]["to_state"] == "deleted" and history[-1]["detail"]["revived"] is True
    assert (await client.get("gone")).state == "deleted"
