"""Recording webhook delivery attempts in PostgreSQL without ever slowing delivery.

Attempts are buffered in memory and written in batches (at BATCH rows or every
INTERVAL seconds). While PostgreSQL is away the buffer keeps them and the writer
retries with a growing pause; the buffer is bounded (MOST rows): past it the oldest
are dropped and counted, a warning says how many, delivery never waits.
"""

from __future__ import annotations

import asyncio
from collections import deque

from runner.daemon.resilience import Backoff
from runner.logs import get_logger
from runner.store import AttemptRow, WebhookAttempts

log = get_logger()

BATCH = 1000
INTERVAL = 0.5
MOST = 200_000


class AttemptsLog:
    def __init__(
        self, pg: WebhookAttempts, most: int = MOST, batch: int = BATCH, interval: float = INTERVAL
    ) -> None:
        self.pg = pg
        self.batch = batch
        self.interval = interval
        self.buffer: deque[AttemptRow] = deque(maxlen=most)
        self.dropped = 0
        self.written = 0
        self._told_dropped = 0

    def add(self, row: AttemptRow) -> None:
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1  # the deque drops the oldest itself
        self.buffer.append(row)

    async def run(self) -> None:
        """Write what was added, for ever; a failed write is tried again later."""
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            try:
                await self.flush()
                backoff.reset()
                await asyncio.sleep(self.interval)
            except Exception as exc:  # the policy: log, keep the rows, pause, go on
                await backoff.pause("webhook attempts", exc, buffered=len(self.buffer))

    async def flush(self) -> None:
        """Write everything buffered now, a batch a statement; rows leave the buffer
        only once written."""
        if self.dropped > self._told_dropped:
            log.warning(
                "webhook attempts dropped: postgres away and the buffer full",
                dropped=self.dropped - self._told_dropped, kept=len(self.buffer),
            )  # fmt: skip
            self._told_dropped = self.dropped
        while self.buffer:
            rows = [self.buffer[i] for i in range(min(self.batch, len(self.buffer)))]
            await self.pg.write(rows)
            for _ in rows:
                self.buffer.popleft()
            self.written += len(rows)
