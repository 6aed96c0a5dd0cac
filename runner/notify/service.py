"""The daemon's webhook service: one Sink per `[notify.NAME]`, and the writer of
their attempts, as tasks of one TaskGroup (the supervisor runs this as one service).

A reload (`configure`) starts new sinks, restarts changed ones (the old one has
stopped and given its lease up before the new one starts) and stops removed ones;
a removed sink's consumer groups are destroyed by the daemon whose reload removed
it, since a group nobody reads would hold the transition stream for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from runner.config.notify import NotifySettings
from runner.config.settings import Settings
from runner.daemon.resilience import keep_going
from runner.logs import get_logger
from runner.notify.attempts import AttemptsLog
from runner.notify.metrics import WebhookMetrics
from runner.notify.sink import Sink
from runner.store import PgStore, RedisStore, WebhookAttempts

log = get_logger()


class NotifyService:
    def __init__(
        self,
        store: RedisStore,
        pg_store: PgStore,
        daemon: str,
        settings: Settings,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.store = store
        self.daemon = daemon
        self.metrics = metrics
        self.lease_ms = int(settings.lease_ttl * 1000)
        self.sinks: Mapping[str, NotifySettings] = dict(settings.notify)
        self.attempts = AttemptsLog(WebhookAttempts(pg_store))
        self.running: dict[str, Sink] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self.attempts.run(), name="notify attempts")
            for sink in self.sinks.values():
                self._start(sink, after=None)
            await asyncio.Event().wait()  # until the daemon stops the service

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: sinks added, changed and removed."""
        old, self.sinks = self.sinks, dict(settings.notify)
        self.lease_ms = int(settings.lease_ttl * 1000)
        if self._group is None:
            return
        for name in sorted(set(old) - set(self.sinks)):
            log.info("webhook sink removed", sink=name)
            stopped = self._stop(name)
            self._group.create_task(self._forget(name, stopped), name=f"notify {name} removal")
        for name, sink in self.sinks.items():
            if old.get(name) != sink:
                log.info("webhook sink " + ("changed" if name in old else "added"), sink=name)
                self._start(sink, after=self._stop(name))

    def _start(self, sink: NotifySettings, after: asyncio.Task[None] | None) -> None:
        assert self._group is not None
        worker = Sink(
            sink, self.store, self.attempts, self.daemon, self.lease_ms, metrics=self.metrics
        )
        self.running[sink.name] = worker
        self._tasks[sink.name] = self._group.create_task(
            self._run_after(after, worker), name=f"notify {sink.name}"
        )

    def _stop(self, name: str) -> asyncio.Task[None] | None:
        task = self._tasks.pop(name, None)
        self.running.pop(name, None)
        if task is not None:
            task.cancel()
        return task

    @staticmethod
    async def _run_after(previous: asyncio.Task[None] | None, sink: Sink) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await sink.run()

    async def _forget(self, name: str, stopped: asyncio.Task[None] | None) -> None:
        if stopped is not None:
            await asyncio.wait([stopped])
        if name in self.sinks:  # added back by a later reload meanwhile
            return
        await keep_going(f"notify {name}", self.store.sink(name).destroy)
        log.info("webhook sink's consumer group destroyed", sink=name)
