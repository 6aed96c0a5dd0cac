"""[jobs] max_result: a result larger than the limit, as JSON, fails its job."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings, TaskSettings
from runner.store.postgres.store import PgStore
from tests.conftest import TEST_TASKS
from tests.daemon.harness import drain, history

LIMIT = 1000


async def test_a_result_over_max_result_fails_its_job_naming_the_size_and_the_key(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    """An async and a cpu job whose results are over [jobs] max_result as JSON fail at
    once (no retry: the same work returns the same size) with the size and the key in
    the error, and no result is kept; a result within the limit is kept as usual."""
    sized = TaskSettings("sized_cpu", "tests.daemon.cpu_tasks:sized_reply", "cpu", retries=2)
    settings = make_settings(max_result=LIMIT, tasks={**TEST_TASKS, "sized_cpu": sized})
    client = Client(settings, redis, pg)
    text = "é" * 600  # 2 bytes a character in UTF-8: the limit counts bytes
    big_async = await client.enqueue("echo", [text])
    big_cpu = await client.enqueue("sized_cpu", ["", 5000])
    fits = await client.enqueue("sized_cpu", ["", 900])
    await drain(settings)

    sizes = {
        big_async: len(orjson.dumps({"args": [text], "kwargs": {}})),
        big_cpu: len(orjson.dumps({"received": 0, "reply": "r" * 5000})),
    }
    for job_id, size in sizes.items():
        job = await client.get(job_id)
        assert (job.state, job.attempt, job.result) == ("failed", 1, None)
        assert f"returned {size:,} bytes as JSON, over the limit of {LIMIT:,}" in (job.error or "")
        assert "[jobs] max_result" in (job.error or "")
        assert [e["to_state"] for e in await history(pg, job_id)][-1] == "failed"
    assert (await client.get(fits)).result == {"received": 0, "reply": "r" * 900}
