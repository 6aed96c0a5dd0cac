"""Webhook test fixtures: a real local HTTP receiver, sinks run against the test's
own Redis prefix and Postgres database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from runner.config.notify import NotifySettings
from runner.jobs import Outcome
from runner.notify.attempts import AttemptsLog
from runner.notify.metrics import WebhookMetrics
from runner.notify.sink import Sink
from runner.store import PgStore, RedisStore, WebhookAttempts
from tests.notify.receiver import Receiver
from tests.store.redis.test_scripts import NOW, new_job

SECRET = "a-test-secret-of-some-length"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver(SECRET)
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def sink_settings(url: str, **overrides: Any) -> NotifySettings:
    base: dict[str, Any] = {"name": "app", "url": url, "secret": SECRET, "timeout": 2.0,
                            "backoff": 0.02, "backoff_max": 0.2}  # fmt: skip
    return NotifySettings(**{**base, **overrides})


class Running:
    """Sinks running as tasks in the test's loop, each as a daemon of its own."""

    def __init__(self, store: RedisStore, pg: PgStore) -> None:
        self.store = store
        self.attempts = AttemptsLog(WebhookAttempts(pg), interval=0.05)
        self.tasks: list[asyncio.Task[None]] = [asyncio.create_task(self.attempts.run())]

    async def start(
        self,
        settings: NotifySettings,
        daemon: str = "d1",
        lease_ms: int = 1500,
        metrics: WebhookMetrics | None = None,
    ) -> asyncio.Task[None]:
        sink = Sink(settings, self.store, self.attempts, daemon, lease_ms, metrics=metrics)
        await sink.ensure_groups()
        task = asyncio.create_task(sink.run())
        self.tasks.append(task)
        return task

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def running(store: RedisStore, pg: PgStore) -> AsyncIterator[Running]:
    sinks = Running(store, pg)
    yield sinks
    await sinks.close()


async def run_jobs(
    store: RedisStore,
    ids: list[str],
    fail: set[str] = frozenset(),  # type: ignore[assignment]
    queue: str = "default",
) -> None:
    """Enqueue, claim and end these jobs of `queue`: scheduled, running, then
    succeeded (or failed for those in `fail`), each job's transitions in three
    stream entries."""
    await store.enqueue_many([replace(new_job(i), queue=queue) for i in ids], "client", NOW)
    limits = {"async": len(ids), "io": 0, "cpu": 0}
    claimed = await store.queue(queue).claim_due(NOW, limits, "d0", NOW + 60_000)
    outcomes = [
        Outcome(j.id, j.attempt, j.claim, "fail", error="boom", detail_json='{"error":"boom"}',
                queue=queue)
        if j.id in fail
        else Outcome(
            j.id, j.attempt, j.claim, "succeed", result_json="7", detail_json='{"result":7}',
            queue=queue,
        )
        for j in claimed.jobs
    ]  # fmt: skip
    await store.finish(NOW, "d0", outcomes)


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
