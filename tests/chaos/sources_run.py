"""A source fed while one of two daemons is SIGKILLed and started again: what was fed,
and what runner made of it (jobs in Postgres, the dead-letter stream, what is left
pending or in processing lists)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.daemon.process import DaemonProcess

MALFORMED_EVERY = 100  # one message in a hundred is malformed
CHUNK = 500


@dataclass
class Fed:
    good: set[int] = field(default_factory=set)  # the n of well-formed messages
    bad: set[str] = field(default_factory=set)  # the malformed payloads


def message(n: int) -> tuple[bool, str]:
    """(well-formed, args text): every MALFORMED_EVERY-th one is not JSON."""
    if n % MALFORMED_EVERY == 7:
        return False, f"[broken {n}"
    return True, f"[{n}]"


async def feed(
    redis: Any, kind: str, key: str, total: int, seconds: float, bootstrap: str = ""
) -> Fed:
    """`total` messages spread over `seconds`, in pipelined chunks."""
    if kind == "kafka":
        return await _feed_kafka(bootstrap, key, total, seconds)
    fed = Fed()
    pause = seconds / max(total / CHUNK, 1)
    for start in range(0, total, CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + CHUNK, total)):
                good, args = message(n)
                (fed.good.add(n) if good else fed.bad.add(args))
                if kind == "stream":
                    pipe.xadd(key, {"task": "echo", "args": args})
                else:
                    pipe.lpush(key, '{"task": "echo", "args": ' + args + "}")
            await pipe.execute()
        await asyncio.sleep(pause)
    return fed


async def _feed_kafka(bootstrap: str, topic: str, total: int, seconds: float) -> Fed:
    """The same messages as a list's items, produced to a Kafka topic."""
    fed = Fed()
    pause = seconds / max(total / CHUNK, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for start in range(0, total, CHUNK):
            for n in range(start, min(start + CHUNK, total)):
                good, args = message(n)
                (fed.good.add(n) if good else fed.bad.add(args))
                value = '{"task": "echo", "args": ' + args + "}"
                await producer.send(topic, value.encode(), key=str(n).encode())
            await producer.flush()
            await asyncio.sleep(pause)
    finally:
        await producer.stop()
    return fed


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of the group's committed offsets in the topic: every message, once all
    are committed (offsets start at 0 in each partition). Asked by a client that
    names the group without joining it, so the daemons' assignment stays as it is."""
    asker = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)  # fmt: skip
    await asker.start()
    try:
        offsets = [await asker.committed(TopicPartition(topic, p)) for p in range(partitions)]
    finally:
        await asker.stop()
    return sum(offset or 0 for offset in offsets)


async def kill_and_restart(
    daemons: list[DaemonProcess],
    start: Callable[[], DaemonProcess],
    kills: int,
    seconds: float,
    rng: random.Random,
) -> int:
    """SIGKILL daemon 0 `kills` times over `seconds`, starting a new one at once."""
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.5, 1.5) * seconds / (kills + 1))
        daemons[0].proc.kill()
        daemons[0].wait_exit(10)
        daemons[0] = start()
        await asyncio.to_thread(daemons[0].wait_ready)
    return kills


async def jobs_of(database_url: str, prefix: str) -> dict[str, tuple[str, Any]]:
    """The jobs whose id starts with `prefix`: id -> (state, args). A row whose args are
    not there yet (its claim or end was committed by one daemon's recorder before its
    enqueue by another's) has args None until the enqueue lands."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, state, args::text AS args FROM runner_jobs WHERE id LIKE $1",
            prefix + "%",
        )
    finally:
        await conn.close()
    return {
        row["id"]: (row["state"], None if row["args"] is None else orjson.loads(row["args"]))
        for row in rows
    }


async def enqueue_events(database_url: str, prefix: str) -> Counter[str]:
    """How many times each job was enqueued, by its history (transitions from nothing)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT job_id, count(*) AS n FROM runner_job_events "
            "WHERE job_id LIKE $1 AND from_state IS NULL GROUP BY job_id",
            prefix + "%",
        )
    finally:
        await conn.close()
    return Counter({row["job_id"]: row["n"] for row in rows})


async def until(check: Callable[[], Any], timeout: float, what: str, seen: dict[str, Any]) -> float:
    """Poll `check` (async) until true; the seconds it took. `seen`: what `check` last
    saw, shown if time runs out."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not reached within {timeout}s; last seen {seen}")
        await asyncio.sleep(1.0)
    return time.monotonic() - began


def config_sections(kind: str, key: str, bootstrap: str = "") -> dict[str, dict[str, Any]]:
    name = "sources__orders"
    where: dict[str, Any] = {"stream": key} if kind == "stream" else {"list": key}
    if kind == "kafka":  # a dead member's partitions move after its session (6 s at least)
        where = {"topic": key, "bootstrap": bootstrap}
    return {
        name: {"kind": "kafka" if kind == "kafka" else f"redis-{kind}", **where,
               "dead_letter": f"{key}:dl", "claim_idle": "6s" if kind == "kafka" else "1s",
               "block": "200ms", "batch": 500},
        "pools": {"async": 500},
        # A job running on a killed daemon is retried once its lease expires, not failed.
        "tasks__echo": {"retries": 3},
    }  # fmt: skip
