"""What both readers share: the loop (a failed step is logged and backed off, never the
end of the daemon), backpressure before each read, and settling a batch: dead-letter
the bad messages, acknowledge the accepted ones, add up the figures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from runner.client.client import Client
from runner.clock import Clock
from runner.config.settings import Settings
from runner.config.sources import SourceSettings
from runner.daemon.resilience import Backoff
from runner.logs import get_logger
from runner.redact import redact_url
from runner.sources.backpressure import Backpressure
from runner.sources.intake import Mapped, Settled, admit
from runner.sources.metrics import SourceMetrics
from runner.store import RedisStore, SourceMessage, count_source

log = get_logger()


class Settles(Protocol):
    """The source's side of settling: a stream or a list."""

    def ack_accepted(self, messages: Sequence[SourceMessage]) -> Awaitable[None]: ...

    def dead_letter(self, rejected: Sequence[tuple[SourceMessage, str]]) -> Awaitable[None]: ...


class Reader:
    """One source read by this daemon. `run()` returns once `stopping` is set, after
    settling the batch in hand; it never ends on an error."""

    def __init__(
        self,
        source: SourceSettings,
        client: Callable[[], Client],
        store: RedisStore,
        *,
        consumer: str,
        clock: Clock,
        metrics: SourceMetrics | None,
        redis_url: str,
    ) -> None:
        self.source = source
        self.client = client
        self.store = store
        self.consumer = consumer
        self.clock = clock
        self.metrics = metrics
        self.url = source.url or redis_url
        self.stopping = False
        self.backpressure = Backpressure(store, source, self._settings, clock, metrics)

    def _settings(self) -> Settings:
        return self.client().settings

    @property
    def service(self) -> str:
        return f"source {self.source.name}"

    async def run(self) -> None:
        backoff = Backoff(cap=5.0)
        where = self.source.bootstrap or redact_url(self.url)  # Kafka's brokers, or a Redis
        log.info("source started", source=self.source.name, kind=self.source.kind,
                 key=self.source.key, url=where)  # fmt: skip
        try:
            await self.start(backoff)
            while not self.stopping:
                try:
                    await self.backpressure.wait_below(lambda: self.stopping, self.let_go)
                    if not self.stopping:
                        await self.step()
                    backoff.reset()
                except Exception as exc:  # the policy: log, back off, read again
                    await backoff.pause(self.service, exc, source=self.source.name)
        finally:
            await self.close()
        log.info("source stopped", source=self.source.name)

    async def start(self, backoff: Backoff) -> None:
        """Set up on the source's Redis (until it answers) and settle what this consumer
        held before."""

    async def step(self) -> None:
        """One read and its settling."""
        raise NotImplementedError

    async def let_go(self) -> None:
        """Acknowledge what is accepted and not yet acknowledged (reading pauses)."""

    async def close(self) -> None:
        """Close the source's connections."""

    async def settle(
        self, messages: Sequence[SourceMessage], side: Settles, mapped: Mapped | None = None
    ) -> Settled:
        """Enqueue the batch's jobs, then let each message go: dead-lettered with its
        reason, or acknowledged once its job was accepted."""
        settled = await admit(self.client(), self.source, messages, mapped)
        await side.dead_letter(settled.rejected)
        dead = len(settled.rejected)
        counted = count_source(
            self.store, self.source.name, accepted=settled.created,
            duplicates=settled.duplicates, dead_lettered=dead,
        )  # fmt: skip
        await asyncio.gather(side.ack_accepted(settled.accepted), counted)
        for message, reason in settled.rejected[:20]:
            log.warning("source message dead-lettered", source=self.source.name,
                        message_id=message.id, error=reason[:300])  # fmt: skip
        if self.metrics is not None:
            self.metrics.settled(self.source.name, settled.created, settled.duplicates, dead)
        return settled
