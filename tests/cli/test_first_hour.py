"""Mistakes of a first hour with runner that must get a clear answer, not bad data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from redis.asyncio import Redis

from runner.client.client import Client
from runner.daemon.recorder import Recorder
from runner.jobs import Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.daemon.process import DaemonProcess, cli, wait_for_history


async def test_arguments_with_a_nul_character_are_refused_at_enqueue(
    daemon_config: Callable[..., Path], redis: Redis, keys: Keys
) -> None:
    """Postgres cannot store \\u0000 in the history: exit 2 with the reason, and nothing
    reaches Redis; a literal backslash-u0000 text is fine."""
    config = daemon_config()
    done = cli("enqueue", "echo", "--args", '["a \\u0000 b"]', "--id", "nul", config=config)
    assert done.returncode == 2 and "NUL character" in done.stderr and "--args" in done.stderr
    assert not await redis.exists(keys.job("nul"))
    fine = cli("enqueue", "echo", "--args", '["a \\\\u0000 b"]', config=config)
    assert fine.returncode == 0, fine.stderr


async def test_ids_starting_with_cron_are_reserved(
    daemon_config: Callable[..., Path], redis: Redis, keys: Keys
) -> None:
    """A user's id cannot pre-empt a cron tick's deterministic id."""
    job_id = "cron:nightly:2030-01-01T00:00:00+00:00"
    done = cli("enqueue", "echo", "--id", job_id, config=daemon_config())
    assert done.returncode == 2 and "reserved for cron ticks" in done.stderr
    assert not await redis.exists(keys.job(job_id))


def test_version(daemon_config: Callable[..., Path]) -> None:
    """`runner --version` names the version."""
    done = cli("--version", config=daemon_config())
    assert done.returncode == 0 and done.stdout.startswith("runner 0.")


async def test_a_finished_jobs_id_names_it_for_good(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    redis: Redis,
    keys: Keys,
    pg: PgStore,
) -> None:
    """Once Redis forgot a finished job, its id still names it: a second enqueue with
    that id changes nothing and says so, and Redis and Postgres keep agreeing."""
    config = daemon_config(daemon={"keep_finished": "1s"})
    daemon = spawn(config)
    daemon.wait_ready()
    first = cli("enqueue", "echo", "--id", "fixed1", "--args", '["first"]', config=config)
    assert first.returncode == 0 and first.stdout.strip() == "fixed1", first.stderr
    await wait_for_history(pg, "fixed1", "succeeded")
    await _until(lambda: _gone(redis, keys.job("fixed1")), "Redis to forget fixed1")

    again = cli(
        "enqueue", "echo", "--id", "fixed1", "--args", '["second"]', "--json", config=config
    )
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout) == {"id": "fixed1", "created": False, "state": "succeeded"}
    assert "already exists (succeeded)" in again.stderr and "nothing was enqueued" in again.stderr
    await asyncio.sleep(0.5)  # a second run, had there been one, would be recorded by now
    assert not await redis.exists(keys.job("fixed1"))
    history = await pg.job_history("fixed1")
    assert [h["to_state"] for h in history] == ["scheduled", "running", "succeeded"]
    shown = orjson.loads(cli("show", "fixed1", "--json", config=config).stdout)
    assert shown["args"] == ["first"] and shown["result"] == {"args": ["first"], "kwargs": {}}


async def test_redis_keeps_a_finished_job_until_postgres_has_it(
    client: Client, redis: Redis, keys: Keys, store: RedisStore, pg: PgStore
) -> None:
    """A finished job gets its expiry only when the recorder has written its last
    transition: until then only Redis knows the id is taken."""
    job_id = await client.enqueue("echo", ["x"], job_id="kept")
    claimed = await store.claim_due(client.clock.now_ms(), {"async": 1}, "d1", 2**52)
    assert [job.id for job in claimed.jobs] == ["kept"]
    await store.finish(
        client.clock.now_ms(), "d1", [Outcome("kept", 1, claimed.jobs[0].claim, "succeed")]
    )
    assert await redis.pttl(keys.job(job_id)) == -1
    recorder = Recorder(store, pg_store=pg, consumer="r1", batch_events=100, flush_interval=0.05)
    await store.ensure_event_group()
    await recorder.drain()
    assert 0 < await redis.pttl(keys.job(job_id)) <= store.keep_finished_ms
    assert (await pg.get_job(job_id) or {})["state"] == "succeeded"


async def _gone(redis: Redis, key: str) -> bool:
    return not await redis.exists(key)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        await asyncio.sleep(0.05)
