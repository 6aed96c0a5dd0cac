"""One Kafka topic read by this daemon, one member of the source's consumer group.

Offsets are committed by hand, and only for messages that are settled (their jobs
accepted, or dead-lettered): a daemon that dies before the commit leaves them to
the member that gets its partitions, which reads them again and finds their jobs
already there under the same ids. The broker, not runner, notices a dead member
(no heartbeat within the session timeout) and hands its partitions on.

A message's id is "<partition>-<offset>": with the topic's name, the job id of a
message that names none, the same at every redelivery. Its value is taken as
UTF-8 text; one that is not (or a tombstone with no value) is handed on with no
text, for the reader to dead-letter.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from runner.errors import StoreUnavailable
from runner.store.failures import on_redis
from runner.store.redis.sources.message import SourceMessage
from runner.store.redis.sources.stream import dead_letter_fields
from runner.store.redis.store import RedisStore

SESSION_MIN_MS = 6_000  # Kafka brokers refuse shorter sessions by default


class KafkaTopic:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        group: str,
        consumer: str,
        session_ms: int,
        batch: int,
        runner_store: RedisStore,
        dead_letter: str,
        name: str,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.consumer = consumer
        self.session_ms = max(session_ms, SESSION_MIN_MS)
        self.batch = batch
        self.redis = runner_store.redis  # runner's Redis: the dead-letter stream
        self.dead_letter_stream = dead_letter
        self.name = name
        self._consumer: Any = None
        self._settled: dict[int, int] = {}  # partition -> next offset to commit

    async def start(self) -> None:
        """Join the group (creating nothing: the topic must exist, or the broker makes it)."""
        if self._consumer is not None:
            return
        aiokafka = importlib.import_module("aiokafka")
        consumer = aiokafka.AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap.split(","),
            group_id=self.group,
            client_id=f"runner-{self.consumer}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_ms,
            heartbeat_interval_ms=max(self.session_ms // 3, 1000),
            max_poll_records=self.batch,
        )
        try:
            await consumer.start()
        except Exception as exc:
            await _quietly_stop(consumer)
            raise _unavailable(exc, self.bootstrap) from exc
        self._consumer = consumer

    async def read(self, block_ms: int) -> list[SourceMessage]:
        """The next messages of the partitions this member holds, waiting up to
        `block_ms` for one."""
        await self.start()
        try:
            batches = await self._consumer.getmany(timeout_ms=block_ms, max_records=self.batch)
        except Exception as exc:
            raise _unavailable(exc, self.bootstrap) from exc
        messages = []
        for part, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
            messages += [_message(part.partition, record) for record in records]
        return messages

    def settled(self, messages: Sequence[SourceMessage]) -> None:
        """These messages' jobs are accepted or they are dead-lettered: committed next."""
        for message in messages:
            partition, offset = _place(message.id)
            self._settled[partition] = max(self._settled.get(partition, 0), offset + 1)

    async def commit(self) -> None:
        """Commit what was settled. A commit refused because the partitions moved to
        another member (a rebalance) is dropped: that member reads them again, and
        their jobs exist."""
        if not self._settled or self._consumer is None:
            return
        settled, self._settled = self._settled, {}
        aiokafka = importlib.import_module("aiokafka")
        offsets = {aiokafka.TopicPartition(self.topic, p): o for p, o in settled.items()}
        errors = importlib.import_module("aiokafka.errors")
        try:
            await self._consumer.commit(offsets)
        except (errors.CommitFailedError, errors.IllegalStateError):
            return
        except Exception as exc:
            self._settled = {p: max(o, self._settled.get(p, 0)) for p, o in settled.items()}
            raise _unavailable(exc, self.bootstrap) from exc

    @on_redis
    async def dead_letter(self, rejected: Sequence[tuple[SourceMessage, str]]) -> None:
        """Each message to the dead-letter stream (on runner's Redis) with its reason."""
        if not rejected:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for message, reason in rejected:
                fields: dict[Any, Any] = {
                    **dead_letter_fields(self.name, message, reason),
                    "topic": self.topic,
                }
                pipe.xadd(self.dead_letter_stream, fields)
            await pipe.execute()

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _quietly_stop(consumer)


def _message(partition: int, record: Any) -> SourceMessage:
    message_id = f"{partition}-{record.offset}"
    if record.value is None:
        return SourceMessage(message_id, problem="no value (a tombstone)")
    try:
        return SourceMessage(message_id, item=bytes(record.value).decode())
    except UnicodeDecodeError:
        return SourceMessage(message_id, problem="the value is not UTF-8 text")


def _place(message_id: str) -> tuple[int, int]:
    partition, _, offset = message_id.partition("-")
    return int(partition), int(offset)


async def _quietly_stop(consumer: Any) -> None:
    try:
        await consumer.stop()
    except Exception:  # leaving the group is a courtesy: the session ends by itself
        return


def _unavailable(exc: Exception, bootstrap: str) -> StoreUnavailable:
    return StoreUnavailable(f"kafka unavailable: {type(exc).__name__}: {exc}", f"kafka {bootstrap}")
