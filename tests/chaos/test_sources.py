"""A stream source and a list source fed while one of two daemons is SIGKILLed again and
again: every well-formed message becomes exactly one job, every malformed one is in the
dead-letter stream with its reason, and nothing is left pending or in a processing list.

Short in `make test` (2,000 messages, 2 kills); RUNNER_CHAOS=long (`make chaos`) feeds
100,000 with 5 kills.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.chaos import figures
from tests.chaos.profile import profile
from tests.chaos.sources_run import (
    committed,
    config_sections,
    create_topic,
    enqueue_events,
    feed,
    jobs_of,
    kill_and_restart,
    until,
)
from tests.daemon.process import DaemonProcess
from tests.kafka_broker import kafka_broker

PROFILE = profile("sources")
KAFKA_PARTITIONS = 3


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with kafka_broker() as address:
        yield address


async def _run(
    kind: str,
    redis: Any,
    prefix: str,
    database_url: str,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    bootstrap: str = "",
) -> dict[str, Any]:
    """Feed, kill, wait for the end; the figures and what is left for the checks."""
    key = f"{{{prefix}}}:orders"
    if kind == "kafka":  # a topic's name: letters, digits, '.', '_' and '-'
        key = "orders-" + "".join(c if c.isalnum() else "-" for c in prefix)
        await create_topic(bootstrap, key, KAFKA_PARTITIONS)
    config = daemon_config(**config_sections(kind, key, bootstrap))
    daemons = [spawn(config) for _ in range(PROFILE.daemons)]
    for daemon in daemons:
        await asyncio.to_thread(daemon.wait_ready)
    began = time.monotonic()
    fed, kills = await asyncio.gather(
        feed(redis, kind, key, PROFILE.jobs, PROFILE.seconds, bootstrap),
        kill_and_restart(daemons, lambda: spawn(config), PROFILE.kills[0], PROFILE.seconds,
                         random.Random(5)),
    )  # fmt: skip

    seen: dict[str, Any] = {}

    async def done() -> bool:
        jobs = await jobs_of(database_url, key + ":")
        seen["states"] = Counter(state for state, _ in jobs.values())
        seen["dead_lettered"] = await redis.xlen(f"{key}:dl")
        if kind == "stream":
            seen["group"] = await redis.xinfo_groups(key)
        # Succeeded, with its enqueue recorded too (another recorder may commit it later).
        ended = sum(1 for state, args in jobs.values() if state == "succeeded" and args is not None)
        return bool(ended >= len(fed.good) and seen["dead_lettered"] >= len(fed.bad))

    await until(done, PROFILE.timeout, f"{kind} source settled", seen)
    wall = time.monotonic() - began
    await asyncio.sleep(0.5)  # a late duplicate would show now
    jobs = await jobs_of(database_url, key + ":")
    dead = [fields for _, fields in await redis.xrange(f"{key}:dl")]
    args = [tuple(a) for _, a in jobs.values()]
    figures.record(
        f"sources-{kind}", messages=PROFILE.jobs, jobs=len(jobs), dead_lettered=len(dead),
        duplicates=len(args) - len(set(args)), kills=kills, wall_s=round(wall, 1),
    )  # fmt: skip
    return {"fed": fed, "jobs": jobs, "args": args, "dead": dead, "key": key}


def _check_jobs(run: dict[str, Any], enqueued: Any) -> None:
    fed, jobs, dead = run["fed"], run["jobs"], run["dead"]
    assert len(run["args"]) == len(set(run["args"])), "a message made two jobs"
    assert {a[0] for a in run["args"]} == fed.good
    assert {state for state, _ in jobs.values()} == {"succeeded"}
    assert set(enqueued) == set(jobs) and set(enqueued.values()) == {1}
    assert len(dead) == len(fed.bad)
    assert all(d["reason"].startswith(("field 'args': not JSON", "not JSON")) for d in dead)


@pytest.mark.timeout(PROFILE.timeout + 120)
async def test_a_stream_source_makes_one_job_per_message_through_kills(
    redis: Any,
    prefix: str,
    database_url: str,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Every well-formed entry is exactly one job (its id from the stream and the entry),
    every malformed one is dead-lettered with its original fields, and the group holds
    nothing pending at the end."""
    run = await _run("stream", redis, prefix, database_url, daemon_config, spawn)
    _check_jobs(run, await enqueue_events(database_url, run["key"] + ":"))
    assert {orjson.loads(d["fields"])["args"] for d in run["dead"]} == run["fed"].bad
    assert (await redis.xpending(run["key"], "runner"))["pending"] == 0
    entries = {entry for entry, _ in await redis.xrange(run["key"])}
    assert {job_id.removeprefix(run["key"] + ":") for job_id in run["jobs"]} <= entries


@pytest.mark.timeout(PROFILE.timeout + 120)
async def test_a_list_source_makes_one_job_per_item_through_kills(
    redis: Any,
    prefix: str,
    database_url: str,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Every well-formed item is exactly one job, every malformed one is dead-lettered
    as it was, and the killed daemons' processing lists were all recovered."""
    run = await _run("list", redis, prefix, database_url, daemon_config, spawn)
    _check_jobs(run, await enqueue_events(database_url, run["key"] + ":"))
    assert {d["item"].split('"args": ')[1][:-1] for d in run["dead"]} == run["fed"].bad
    assert await redis.llen(run["key"]) == 0
    leftovers = [k async for k in redis.scan_iter(match=f"{run['key']}:runner:processing:*")]
    assert [k for k in leftovers if await redis.llen(k)] == []
    landing = [k async for k in redis.scan_iter(match=f"{run['key']}:runner:landing:*")]
    assert [k for k in landing if await redis.llen(k)] == []


@pytest.mark.timeout(PROFILE.timeout + 120)
async def test_a_kafka_source_makes_one_job_per_message_through_kills(
    redis: Any,
    prefix: str,
    database_url: str,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    bootstrap: str,
) -> None:
    """Every well-formed message of a 3-partition topic is exactly one job (its id from
    the topic, partition and offset), every malformed one is dead-lettered as it was,
    and the group's committed offsets cover every message at the end."""
    run = await _run("kafka", redis, prefix, database_url, daemon_config, spawn, bootstrap)
    _check_jobs(run, await enqueue_events(database_url, run["key"] + ":"))
    assert {d["item"].split('"args": ')[1][:-1] for d in run["dead"]} == run["fed"].bad
    topic = run["key"]
    await until(lambda: _all_committed(bootstrap, topic), 30, "every offset committed", {})


async def _all_committed(bootstrap: str, topic: str) -> bool:
    return await committed(bootstrap, "runner", topic, KAFKA_PARTITIONS) == PROFILE.jobs
