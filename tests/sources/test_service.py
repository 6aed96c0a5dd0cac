"""The sources service in-process on real Redis and Postgres: messages become jobs and
are acknowledged only then, bad ones are dead-lettered with their reason, a redelivery
makes no second job, and backpressure stops and resumes reading."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from runner.client.client import Client
from runner.client.status import status_of
from runner.clock import SYSTEM_CLOCK
from runner.config.settings import Settings
from runner.config.sources import SourceSettings
from runner.sources.service import SourcesService
from runner.store import PgStore, RedisStore, SourceStream
from tests.real_servers import Servers

Started = Callable[[Settings], Awaitable[SourcesService]]


@pytest.fixture
async def start_sources(servers: Servers, store: RedisStore, pg: PgStore) -> AsyncIterator[Started]:
    """`await start_sources(settings)`: the service running as a daemon runs it."""
    running: list[tuple[SourcesService, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> SourcesService:
        service = SourcesService(settings, store, pg, redis_url=servers.redis_url,
                                 consumer="test-daemon", clock=SYSTEM_CLOCK)  # fmt: skip
        running.append((service, asyncio.create_task(service.run())))
        return service

    yield start
    for service, task in running:
        await service.stop()
        await asyncio.wait_for(task, 10)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _stream_source(prefix: str, **options: object) -> SourceSettings:
    key = f"{{{prefix}}}:orders"
    base = SourceSettings(name="orders", kind="redis-stream", key=key, dead_letter=f"{key}:dl",
                          block=0.1, claim_idle=0.5)  # fmt: skip
    return replace(base, **options)  # type: ignore[arg-type]  # the tests pass valid options


async def test_stream_messages_become_jobs_and_bad_ones_are_dead_lettered(
    settings: Settings, client: Client, redis: Any, prefix: str, start_sources: Started
) -> None:
    """Well-formed entries become jobs named by the stream and entry id and are
    acknowledged; malformed ones land in the dead-letter stream with their reason; the
    figures reach `runner status`."""
    source = _stream_source(prefix)
    ids = [await redis.xadd(source.key, {"task": "echo", "args": f"[{n}]"}) for n in range(5)]
    bad = await redis.xadd(source.key, {"task": "echo", "args": "[oops"})
    await start_sources(replace(settings, sources={"orders": source}))
    reader = SourceStream(servers_url(settings), source.key, group="runner", consumer="x",
                          dead_letter=source.dead_letter, name="orders")  # fmt: skip

    async def settled() -> bool:
        return await redis.xlen(source.dead_letter) == 1 and await reader.pending() == 0

    await _until(settled)
    for n, entry in enumerate(ids):
        job = await client.get(f"{source.key}:{entry}")
        assert (job.task, job.args) == ("echo", [n])
    ((_, dead),) = await redis.xrange(source.dead_letter)
    assert dead["message_id"] == bad and dead["reason"].startswith("field 'args': not JSON")
    doc = await status_of(Client(replace(settings, sources={"orders": source}), redis), {})
    assert doc["sources"]["orders"] == {"accepted": 5, "duplicates": 0, "dead_lettered": 1,
                                        "held_back": False, "held": None}  # fmt: skip
    await reader.close()


def servers_url(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url


async def test_a_redelivered_entry_makes_no_second_job(
    settings: Settings, client: Client, redis: Any, prefix: str, start_sources: Started
) -> None:
    """An entry whose job already exists (enqueued, then the daemon died before the
    acknowledgement) is acknowledged as a duplicate: the job is not touched again."""
    source = _stream_source(prefix)
    entry = await redis.xadd(source.key, {"task": "echo", "args": "[1]"})
    await client.enqueue("echo", [1], job_id=f"{source.key}:{entry}")
    await redis.xadd(source.key, {"task": "echo", "args": "[2]"})
    with_source = replace(settings, sources={"orders": source})
    await start_sources(with_source)
    watcher = Client(with_source, redis)

    async def both() -> bool:
        figures = (await status_of(watcher, {}))["sources"]["orders"]
        return bool(figures["accepted"] + figures["duplicates"] == 2)

    await _until(both)
    figures = (await status_of(watcher, {}))["sources"]["orders"]
    assert (figures["accepted"], figures["duplicates"]) == (1, 1)


async def test_backpressure_stops_reading_and_resumes_when_the_backlog_falls(
    settings: Settings, client: Client, redis: Any, prefix: str, start_sources: Started
) -> None:
    """With no daemon running the jobs, the source stops once its task's kind has more
    than max_backlog due jobs, says so in status, and reads on once they are gone."""
    source = _stream_source(prefix, task="echo", batch=2, max_backlog=3)
    for n in range(10):
        await redis.xadd(source.key, {"args": f"[{n}]"})
    with_source = replace(settings, sources={"orders": source})
    await start_sources(with_source)
    watcher = Client(with_source, redis)

    async def held() -> bool:
        return bool((await status_of(watcher, {}))["sources"]["orders"]["held_back"])

    await _until(held)
    taken = (await status_of(watcher, {}))["sources"]["orders"]["accepted"]
    assert 4 <= taken <= 5  # read until over the bound, then no more
    await asyncio.sleep(0.5)
    assert (await status_of(watcher, {}))["sources"]["orders"]["accepted"] == taken
    doc = await status_of(watcher, {})
    assert doc["sources"]["orders"]["held"] == {"backlog": taken, "bound": 3}
    for entry in [e for e, _ in await redis.xrange(source.key)][:taken]:
        await client.cancel(f"{source.key}:{entry}")

    async def resumed() -> bool:
        return bool((await status_of(watcher, {}))["sources"]["orders"]["accepted"] > taken)

    await _until(resumed)


async def test_list_items_become_jobs_and_leave_the_processing_list(
    settings: Settings, client: Client, redis: Any, prefix: str, start_sources: Started
) -> None:
    """Items pushed on a list become jobs (ids from the list and the item's token), bad
    ones are dead-lettered, and the processing list is empty once all are settled."""
    key = f"{{{prefix}}}:mails"
    source = SourceSettings(name="mails", kind="redis-list", key=key, dead_letter=f"{key}:dl",
                            block=0.1, claim_idle=1.0)  # fmt: skip
    for n in range(4):
        await redis.lpush(key, f'{{"task": "echo", "args": [{n}]}}')
    await redis.lpush(key, "{broken")
    await start_sources(replace(settings, sources={"mails": source}))

    async def settled() -> bool:
        return bool(await redis.xlen(source.dead_letter) == 1 and await redis.llen(key) == 0)

    await _until(settled)
    await _until(lambda: _empty(redis, f"{key}:runner:processing:test-daemon"))
    gen = await redis.hget(f"{key}:runner:seq", "gen")
    jobs = [await client.get(f"{key}:{gen}-{n}") for n in range(1, 5)]
    assert [job.args for job in jobs] == [[0], [1], [2], [3]]


async def _empty(redis: Any, key: str) -> bool:
    return bool(await redis.llen(key) == 0)
