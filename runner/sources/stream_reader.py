"""A stream source: read through a consumer group, this daemon one consumer of it.

Each step reads a batch (XREADGROUP, blocking up to `block`), settles it, and
acknowledges each message once its job was accepted. At start the consumer's own
pending entries (id "0") are settled first; every half `claim_idle` the entries
that a dead consumer left pending that long are claimed (XAUTOCLAIM) and settled.
A job's id is the message's id field or the stream's name and the entry id, so an
entry delivered twice (a crash between enqueue and acknowledgement, a claim) never
makes a second job.
"""

from __future__ import annotations

import asyncio
import time

from runner.daemon.resilience import Backoff, keep_going, report
from runner.errors import StoreError
from runner.logs import get_logger
from runner.sources.reader import Reader
from runner.store import SourceStream

log = get_logger()

FORGET_CONSUMERS_S = 600.0  # how often consumers long idle and holding nothing are dropped
CONSUMER_IDLE_MS = 24 * 3600 * 1000  # ... and how idle they must be
ACK_AT_STOP_S = 5.0  # at stop, how long the last acknowledgements may take


class StreamReader(Reader):
    stream: SourceStream

    async def start(self, backoff: Backoff) -> None:
        source = self.source
        self.stream = SourceStream(
            self.url,
            source.key,
            group=source.group,
            consumer=self.consumer,
            dead_letter=source.dead_letter,
            name=source.name,
        )
        await keep_going(self.service, self.stream.ensure_group, cap=5.0)
        self._claim_at = 0.0
        self._forget_at = time.monotonic() + FORGET_CONSUMERS_S
        await keep_going(self.service, self._own_pending, cap=5.0)

    async def _own_pending(self) -> None:
        """What this consumer was given and never acknowledged (a reader restarted by a
        reload, or a daemon that kept its consumer name)."""
        while not self.stopping:
            messages = await self.stream.read(self.source.batch, None, own_pending=True)
            if not messages:
                return
            await self.settle(messages, self.stream)

    async def step(self) -> None:
        now = time.monotonic()
        if now >= self._claim_at:
            await self._claim_dead()
            self._claim_at = time.monotonic() + max(self.source.claim_idle / 2, 0.5)
        if now >= self._forget_at:
            await self.stream.forget_idle_consumers(CONSUMER_IDLE_MS)
            self._forget_at = now + FORGET_CONSUMERS_S
        block_ms = max(int(self.source.block * 1000), 1)
        messages = await self.stream.read(self.source.batch, block_ms)
        if messages:
            await self.settle(messages, self.stream)

    async def _claim_dead(self) -> None:
        """Entries idle past `claim_idle` on any consumer (a dead daemon's), settled here."""
        start = "0-0"
        idle_ms = int(self.source.claim_idle * 1000)
        while not self.stopping:
            start, messages = await self.stream.claim(idle_ms, self.source.batch, start)
            if messages:
                log.info("source took over a dead consumer's entries",
                         source=self.source.name, entries=len(messages))  # fmt: skip
                await self.settle(messages, self.stream)
            if start == "0-0":
                return

    async def let_go(self) -> None:
        await self.stream.flush_acks()

    async def close(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            try:
                async with asyncio.timeout(ACK_AT_STOP_S):
                    await stream.flush_acks()
            except (StoreError, TimeoutError) as exc:  # they come again: their jobs exist
                report(self.service, exc)
            await stream.close()
