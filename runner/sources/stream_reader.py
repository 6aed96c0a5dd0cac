"""A stream source: read through a consumer group, this daemon one consumer of it.

Each step reads a batch (XREADGROUP, blocking up to `block`), settles it, and
acknowledges each message once its job was accepted. The next batch is read and
mapped while this one is enqueued (a read ahead of one batch, its read sent before
the enqueue): parsing and mapping, in Python, overlap the enqueue script, in Redis,
which takes the ingest rate from about 0.75x the client's enqueue_many to about
1.05x in `make bench`. A batch read ahead is pending on this consumer like any other: settled at
stop, or, if the daemon dies, claimed by another. At start the consumer's own
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
from runner.sources.intake import Mapped, map_batch
from runner.sources.reader import Reader
from runner.store import SourceMessage, SourceStream

log = get_logger()

FORGET_CONSUMERS_S = 600.0  # how often consumers long idle and holding nothing are dropped
CONSUMER_IDLE_MS = 24 * 3600 * 1000  # ... and how idle they must be
ACK_AT_STOP_S = 5.0  # at stop, how long the last acknowledgements may take


class StreamReader(Reader):
    stream: SourceStream
    _ahead: asyncio.Task[tuple[list[SourceMessage], Mapped]] | None = None

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
        ahead, self._ahead = self._ahead, None
        messages, mapped = await (ahead if ahead is not None else self._read_and_map())
        if not messages:
            return  # idle: no read ahead, so a stop or a backpressure check comes first
        self._ahead = asyncio.ensure_future(self._read_and_map())
        # Let the next read go out first: Redis runs one command at a time, and the
        # read is quick while the enqueue is not. Then the new batch is parsed and
        # mapped here while Redis runs this batch's enqueue script.
        await asyncio.sleep(0)
        await self.settle(messages, self.stream, mapped)

    async def _read_and_map(self) -> tuple[list[SourceMessage], Mapped]:
        block_ms = max(int(self.source.block * 1000), 1)
        messages = await self.stream.read(self.source.batch, block_ms)
        return messages, map_batch(self.client(), self.source, messages)

    async def _settle_ahead(self) -> None:
        """At stop: the batch read ahead is settled if it came, else its read dropped
        (what it would have brought stays pending here, claimed later as a dead
        consumer's)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return
        if not ahead.done():
            ahead.cancel()
            await asyncio.wait([ahead])
        if ahead.cancelled() or ahead.exception() is not None:
            return
        messages, mapped = ahead.result()
        if messages:
            await self.settle(messages, self.stream, mapped)

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
                    await self._settle_ahead()
            except (StoreError, TimeoutError) as exc:
                report(self.service, exc)
            try:
                async with asyncio.timeout(ACK_AT_STOP_S):
                    await stream.flush_acks()
            except (StoreError, TimeoutError) as exc:  # they come again: their jobs exist
                report(self.service, exc)
            await stream.close()
