"""A list source: the reliable-queue pattern, this daemon one consumer of the list.

Each step takes a batch into this consumer's processing list (atomically, each item
with a token for good), settles it, and removes each item once its job was accepted.
An empty list is waited on with a blocking move into a landing list that the next
take drains first. A heartbeat key (TTL `claim_idle`) says this consumer is alive;
every half `claim_idle` the items of consumers whose heartbeat expired are taken
over and settled. The job id is the item's id field or the list's name and its
token, so an item taken over after a crash never makes a second job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from runner.daemon.resilience import Backoff, every, keep_going
from runner.logs import get_logger
from runner.sources.reader import Reader
from runner.store import SourceList

log = get_logger()


class ListReader(Reader):
    items: SourceList

    @property
    def ttl_ms(self) -> int:
        return max(int(self.source.claim_idle * 1000), 1000)

    async def run(self) -> None:
        """The reader's loop beside the heartbeat, which goes on while a batch waits on an
        enqueue or a blocking read."""
        source = self.source
        self.items = SourceList(
            self.url,
            source.key,
            group=source.group,
            consumer=self.consumer,
            dead_letter=source.dead_letter,
            name=source.name,
        )
        beat = asyncio.create_task(
            every(f"{self.service} heartbeat", self._beat, lambda: self.ttl_ms / 3000),
            name=f"{self.service} heartbeat",
        )
        try:
            await super().run()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _beat(self) -> None:
        await self.items.heartbeat(self.ttl_ms)

    async def start(self, backoff: Backoff) -> None:
        await keep_going(self.service, self._beat, cap=5.0)
        self._recover_at = 0.0
        mine = await keep_going(self.service, self.items.processing_items, cap=5.0)
        if mine:
            await keep_going(self.service, lambda: self.settle(mine, self.items), cap=5.0)

    async def step(self) -> None:
        if time.monotonic() >= self._recover_at:
            await self._recover_dead()
            self._recover_at = time.monotonic() + max(self.source.claim_idle / 2, 0.5)
        messages = await self.items.take(self.source.batch)
        if messages:
            await self.settle(messages, self.items)
        else:
            await self.items.wait(self.source.block)

    async def _recover_dead(self) -> None:
        for dead in await self.items.dead_consumers():
            messages = await self.items.recover(dead)
            log.info("source took over a dead consumer's items", source=self.source.name,
                     consumer=dead, items=len(messages))  # fmt: skip
            if messages:
                await self.settle(messages, self.items)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a heartbeat left behind only expires
            await self.items.leave()
        await self.items.close()
