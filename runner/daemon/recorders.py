"""The recorders of every queue's transition stream (each queue's is in its slot).

On one server, one recorder reads all the streams at once and writes them in one
statement; on a Redis Cluster, where one read cannot span slots, each queue has a
recorder of its own (see store/redis/stream_set.py). Every daemon records every
queue, served or not: a queue nobody serves still has enqueues and operators'
requests whose history must reach PostgreSQL. New queues are found in the
registry (store/redis/queues.py) within DISCOVER_S.
"""

from __future__ import annotations

import asyncio

from runner.config.settings import Settings
from runner.daemon.metrics import Metrics
from runner.daemon.recorder import Recorder
from runner.daemon.resilience import Backoff
from runner.logs import get_logger
from runner.store import PgStore, RedisStore

log = get_logger()

DISCOVER_S = 1.0


class Recorders:
    """The recorders of this daemon, one a queue, seen from outside as one."""

    def __init__(
        self,
        redis_store: RedisStore,
        *,
        pg_store: PgStore,
        consumer: str,
        settings: Settings,
    ) -> None:
        self.redis_store = redis_store
        self.pg_store = pg_store
        self.consumer = consumer
        self.settings = settings
        self.metrics: Metrics | None = None
        self.by_queue: dict[str, Recorder] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @stopping.setter
    def stopping(self, value: bool) -> None:
        """Asked to stop: each recorder drains what is left, at once."""
        if value:
            self._stop.set()
            for recorder in self.by_queue.values():
                recorder.stopping = True

    @property
    def recorded(self) -> int:
        return sum(r.recorded for r in {id(r): r for r in self.by_queue.values()}.values())

    def configure(self, settings: Settings) -> None:
        self.settings = settings
        for recorder in set(self.by_queue.values()):
            recorder.configure(settings)

    def _recorder(self, queue: str) -> Recorder:
        recorder = Recorder(
            self.redis_store.queue(queue),
            queues=[queue],
            pg_store=self.pg_store,
            consumer=self.consumer,
            batch_events=self.settings.recorder_batch,
            flush_interval=self.settings.recorder_interval,
            reclaim_after=self.settings.recorder_reclaim_after,
            keep=self.settings.events_keep,
        )
        recorder.metrics = self.metrics
        return recorder

    async def run(self) -> None:
        """Record every queue until asked to stop; then each recorder drains its own."""
        backoff = Backoff()
        try:
            while not self.stopping:
                try:
                    names = await self.redis_store.queue_names(fresh=True)
                    backoff.reset()
                except Exception as exc:  # the store is down: the recorders wait too
                    await backoff.pause("recorder", exc)
                    continue
                await self._start(names)
                await self._sleep(DISCOVER_S)
        finally:
            for recorder in self.by_queue.values():
                recorder.stopping = True
            if self._tasks:
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _start(self, names: list[str]) -> None:
        """A recorder for each new queue; on one server, the new queues join the one
        recorder (its consumer group made on their streams first)."""
        shared = not self.redis_store.on_cluster
        for name in names:
            if name in self.by_queue:
                continue
            if shared and self._tasks:
                first = next(iter(self.by_queue.values()))
                try:
                    await self.redis_store.queue(name).ensure_event_group()
                except Exception as exc:  # the store is down: try again at the next look
                    log.warning("recorder cannot follow a new queue yet", queue=name,
                                error=str(exc))  # fmt: skip
                    continue
                first.streams.add(name)
                self.by_queue[name] = first
                continue
            self.by_queue[name] = self._recorder(name)
            self._tasks[name] = asyncio.create_task(self.by_queue[name].run())

    async def _sleep(self, seconds: float) -> None:
        """Sleep until the next look for queues, or a stop; raise what ended a recorder
        (it failed for good: the supervisor reports a dead service)."""
        ended = [t for t in self._tasks.values() if t.done()]
        for task in ended:
            task.result()
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass
