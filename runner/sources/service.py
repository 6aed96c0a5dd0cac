"""The daemon's sources service: one reader per `[sources.NAME]`, started, stopped and
restarted as reloads add, remove and change them.

The readers run as tasks of this service's own TaskGroup, so none is forgotten: a
reader that raised (a bug in runner; every failure around it is backed off inside)
ends the service, and the supervisor stops the daemon. Stopping a reader sets its
flag: it settles the batch in hand (enqueue, then acknowledgements) and returns; a
reader still blocked on a read past the wait is cancelled, which loses nothing (an
entry delivered to it stays pending for another consumer to claim, an item moved
to its landing list is taken over).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from runner.client.client import Client
from runner.clock import Clock
from runner.config.settings import Settings
from runner.config.sources import SourceSettings
from runner.logs import get_logger
from runner.sources.kafka_reader import KafkaReader
from runner.sources.list_reader import ListReader
from runner.sources.metrics import SourceMetrics
from runner.sources.reader import Reader
from runner.sources.stream_reader import StreamReader
from runner.store import PgStore, RedisStore, redis_client

log = get_logger()

STOP_WAIT_S = 10.0  # at stop, how long a reader may take to settle its batch


class SourcesService:
    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        pg: PgStore,
        *,
        redis_url: str,
        consumer: str,
        clock: Clock,
        metrics: SourceMetrics | None = None,
    ) -> None:
        self.store = store
        self.pg = pg
        self.redis_url = redis_url
        self.consumer = consumer
        self.clock = clock
        self.metrics = metrics
        # the client's own connections for enqueues
        self._redis = redis_client(redis_url, settings.redis_cluster)
        self._client = Client(settings, self._redis, pg, clock)
        self._wanted: Mapping[str, SourceSettings] = settings.sources
        self._running: dict[str, tuple[Reader, asyncio.Task[None]]] = {}
        self._changed = asyncio.Event()
        self._stopped = False

    def client(self) -> Client:
        return self._client

    def configure(self, settings: Settings) -> None:
        """A reload: new tasks for the mapping, and the sources to start, stop, restart."""
        self._client = Client(settings, self._redis, self.pg, self.clock)
        self._wanted = settings.sources
        self._changed.set()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                while not self._stopped:
                    await self._apply(group)
                    await self._changed.wait()
                    self._changed.clear()
        finally:
            await self._redis.aclose()

    async def _apply(self, group: asyncio.TaskGroup) -> None:
        for name, (reader, _) in list(self._running.items()):
            if self._wanted.get(name) != reader.source:
                await self._stop_one(name)
        for name, source in sorted(self._wanted.items()):
            if name not in self._running:
                reader = self._reader(source)
                task = group.create_task(reader.run(), name=f"source {name}")
                self._running[name] = (reader, task)

    def _reader(self, source: SourceSettings) -> Reader:
        kind: type[Reader] = (
            KafkaReader if source.is_kafka else StreamReader if source.is_stream else ListReader
        )
        return kind(
            source, self.client, self.store, consumer=self.consumer, clock=self.clock,
            metrics=self.metrics, redis_url=self.redis_url,
        )  # fmt: skip

    async def _stop_one(self, name: str) -> None:
        reader, task = self._running.pop(name)
        reader.stopping = True
        _, late = await asyncio.wait([task], timeout=reader.source.block + STOP_WAIT_S)
        if late:
            log.warning("source still busy at stop; cancelled", source=name)
            task.cancel()
            await asyncio.wait([task])

    async def stop(self) -> None:
        """Stop reading everywhere, each reader settling the batch in hand."""
        self._stopped = True
        await asyncio.gather(*(self._stop_one(name) for name in list(self._running)))
        self._changed.set()
