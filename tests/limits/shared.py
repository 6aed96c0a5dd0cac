"""What the limits' tests share: a client whose `echo` task has limits, and the wait
for every job of a run to succeed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from tests.conftest import TEST_TASKS


def limited_client(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, **echo: object
) -> Client:
    """A client whose `echo` task has these settings (concurrency=2, unique=..., ...)."""
    tasks = dict(TEST_TASKS)
    tasks["echo"] = replace(tasks["echo"], **echo)  # type: ignore[arg-type]
    return Client(make_settings(tasks=tasks), redis, pg)


async def all_succeeded(pg: PgStore, count: int) -> bool:
    done = await pg.pool.fetchval("SELECT count(*) FROM runner_jobs WHERE state = 'succeeded'")
    return bool(done == count)
