"""A Kafka source: this daemon one member of the topic's consumer group.

Each step reads what the partitions this member holds have for it (waiting up to
`block`), settles the batch, and commits the offsets of the settled messages: a
message is committed only once its job was accepted or it was dead-lettered. The
broker hands a dead member's partitions to a live one after the session timeout
(`claim_idle`, at least the broker's minimum, 6 s by default); that member reads
from the last commit, and the messages settled but not committed find their jobs
already there under the same ids ("<topic>:<partition>-<offset>").
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from runner.daemon.resilience import Backoff, keep_going, report
from runner.errors import StoreError
from runner.sources.reader import Reader
from runner.store import KafkaTopic, SourceMessage

COMMIT_AT_STOP_S = 5.0


class KafkaReader(Reader):
    topic: KafkaTopic

    async def start(self, backoff: Backoff) -> None:
        source = self.source
        assert source.bootstrap is not None  # the config requires it for a kafka source
        self.topic = KafkaTopic(
            source.bootstrap,
            source.key,
            group=source.group,
            consumer=self.consumer,
            session_ms=int(source.claim_idle * 1000),
            batch=source.batch,
            runner_store=self.store,
            dead_letter=source.dead_letter,
            name=source.name,
        )
        await keep_going(self.service, self.topic.start, cap=5.0)

    async def step(self) -> None:
        messages = await self.topic.read(max(int(self.source.block * 1000), 1))
        if messages:
            await self.settle(messages, self)
            await self.topic.commit()

    async def ack_accepted(self, messages: Sequence[SourceMessage]) -> None:
        self.topic.settled(messages)

    async def dead_letter(self, rejected: Sequence[tuple[SourceMessage, str]]) -> None:
        await self.topic.dead_letter(rejected)
        self.topic.settled([message for message, _ in rejected])

    async def let_go(self) -> None:
        await self.topic.commit()

    async def close(self) -> None:
        topic = getattr(self, "topic", None)
        if topic is None:
            return
        try:
            async with asyncio.timeout(COMMIT_AT_STOP_S):
                await topic.commit()
        except (StoreError, TimeoutError) as exc:  # read again by the next member
            report(self.service, exc)
        await topic.close()
