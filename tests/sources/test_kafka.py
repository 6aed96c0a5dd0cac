"""The Kafka source on a real Kafka-protocol broker (tests/kafka_broker.py): messages
become jobs named by topic, partition and offset, offsets are committed only once the
jobs are accepted or the messages dead-lettered, a member that takes over reads from
the last commit, and bad messages never stop the source."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runner.client.client import Client
from runner.clock import SYSTEM_CLOCK
from runner.config.settings import Settings
from runner.config.sources import SourceSettings
from runner.sources.service import SourcesService
from runner.store import KafkaTopic, PgStore, RedisStore, SourceMessage
from tests.kafka_broker import kafka_broker
from tests.real_servers import Servers
from tests.waiting import eventually

PARTITIONS = 3


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    with kafka_broker() as address:
        yield address


async def _topic(bootstrap: str) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def _produce(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send(topic, value, key=str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()


def _member(bootstrap: str, topic: str, store: RedisStore, consumer: str) -> KafkaTopic:
    """A member of a group of the topic's own (tests share the broker)."""
    return KafkaTopic(bootstrap, topic, group=f"g-{topic}", consumer=consumer, session_ms=6000,
                      batch=500, runner_store=store, dead_letter=f"{topic}:dl",
                      name="orders")  # fmt: skip


async def _read_all(member: KafkaTopic, count: int, timeout: float = 30.0) -> list[SourceMessage]:
    messages: list[SourceMessage] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        messages += await member.read(200)
    return messages


async def test_only_settled_messages_are_committed(bootstrap: str, store: RedisStore) -> None:
    """A member settles the first half of what it read in each partition and commits:
    the group's committed offset in each partition is just past its last settled
    message, so the next member reads the other half again, with the same ids."""
    topic = await _topic(bootstrap)
    await _produce(bootstrap, topic, [f'{{"args": [{n}]}}'.encode() for n in range(40)])
    member = _member(bootstrap, topic, store, "a")
    read = await _read_all(member, 40)
    assert len(read) == 40 and len({m.id for m in read}) == 40
    by_partition: dict[int, list[SourceMessage]] = {}
    for message in read:
        by_partition.setdefault(int(message.id.partition("-")[0]), []).append(message)
    settled = [m for messages in by_partition.values() for m in messages[: len(messages) // 2]]
    member.settled(settled)
    await member.commit()
    await member.close()
    expected = {
        partition: int(messages[len(messages) // 2 - 1].id.partition("-")[2]) + 1
        for partition, messages in by_partition.items() if len(messages) >= 2
    }  # fmt: skip
    assert await _committed(bootstrap, topic, list(expected)) == expected


async def _committed(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The group's committed offsets, asked without joining it."""
    asker = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"g-{topic}",
                             enable_auto_commit=False)  # fmt: skip
    await asker.start()
    try:
        return {p: await asker.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await asker.stop()


@pytest.fixture
async def start_sources(
    servers: Servers, store: RedisStore, pg: PgStore
) -> AsyncIterator[Callable[[Settings], Awaitable[SourcesService]]]:
    running: list[tuple[SourcesService, asyncio.Task[None]]] = []

    async def start(settings: Settings) -> SourcesService:
        service = SourcesService(settings, store, pg, redis_url=servers.redis_url,
                                 consumer=f"daemon-{len(running)}", clock=SYSTEM_CLOCK)  # fmt: skip
        running.append((service, asyncio.create_task(service.run())))
        return service

    yield start
    for service, task in running:
        await service.stop()
        await asyncio.wait_for(task, 20)


async def test_messages_become_jobs_and_bad_ones_are_dead_lettered(
    bootstrap: str,
    settings: Settings,
    client: Client,
    redis: Any,
    start_sources: Callable[[Settings], Awaitable[SourcesService]],
) -> None:
    """Well-formed values become jobs with ids from topic, partition and offset; not
    JSON, an unknown task, a value that is not UTF-8 and a tombstone are each
    dead-lettered on runner's Redis with the reason, and the source goes on."""
    topic = await _topic(bootstrap)
    good: list[bytes | None] = [f'{{"task": "echo", "args": [{n}]}}'.encode() for n in range(30)]
    bad: list[bytes | None] = [b"{not json", b'{"task": "nope"}', b"\xff\xfe", None]
    await _produce(bootstrap, topic, good + bad)
    source = SourceSettings(name="orders", kind="kafka", key=topic, dead_letter=f"{topic}:dl",
                            bootstrap=bootstrap, block=0.2, claim_idle=6.0,
                            group=f"g-{topic}")  # fmt: skip
    await start_sources(replace(settings, sources={"orders": source}))

    async def all_dead_lettered() -> bool:
        return bool(await redis.xlen(source.dead_letter) >= len(bad))

    await eventually(all_dead_lettered, timeout=40, every=0.1, what="the bad messages set aside")
    reasons = sorted(fields["reason"] for _, fields in await redis.xrange(source.dead_letter))
    assert len(reasons) == 4
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("unknown task 'nope'" in r for r in reasons)
    assert "the value is not UTF-8 text" in reasons and "no value (a tombstone)" in reasons
    found = {}
    for partition in range(PARTITIONS):
        for offset in range(len(good) + len(bad)):
            job_id = f"{topic}:{partition}-{offset}"
            if await client.store.job_exists(job_id):
                found[job_id] = (await client.get(job_id)).args[0]
    assert sorted(found.values()) == list(range(30))
