"""The daemon: one supervisor running every service as a named task in one TaskGroup.

If any service dies, the TaskGroup cancels the rest and the process exits
non-zero, for systemd to restart it. Stopping follows one documented order:
stop claiming, let running jobs finish within the grace, cancel what is left,
flush outcomes to Redis, drain the stream to Postgres, close the pools.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import socket
from collections.abc import Sequence

from runner.clock import SYSTEM_CLOCK, Clock
from runner.config import Settings
from runner.connections import Connections
from runner.cpu_pool import CpuPool
from runner.cron_service import CronService
from runner.execution import JobExecution
from runner.executors import AsyncExecutor, Executor, ThreadExecutor
from runner.finisher import Finisher
from runner.jobs import ClaimedJob, Outcome
from runner.leases import LeaseKeeper
from runner.logs import flush_logs, get_logger
from runner.pump import Pump, listen_for_wakeups
from runner.recorder import Recorder
from runner.systemd import notify
from runner.tasks import TaskRegistry

log = get_logger()


def new_daemon_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Daemon:
    def __init__(
        self,
        settings: Settings,
        registry: TaskRegistry,
        conns: Connections,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.conns = conns
        self.id = new_daemon_id()
        self.active: dict[str, ClaimedJob] = {}
        self._job_tasks: set[asyncio.Task[None]] = set()
        lease_ms = int(settings.lease_ttl * 1000)
        self.cpu_pool = CpuPool(settings.cpu_processes, self._nudge)
        self.executors: dict[str, Executor] = {
            "async": AsyncExecutor(settings.async_concurrency, self._nudge),
            "io": ThreadExecutor(settings.io_threads, self._nudge),
            "cpu": self.cpu_pool,
        }
        store = conns.redis_store
        self.finisher = Finisher(store, self.id, clock, self._finished)
        self.execution = JobExecution(registry, self.executors, self.finisher.submit, clock)
        self.pump = Pump(
            store,
            executors=self.executors,
            start=self._start_job,
            daemon=self.id,
            clock=clock,
            batch=settings.claim_batch,
            lease_ms=lease_ms,
            spin=settings.timer_spin,
        )
        self.cron = CronService(store, settings.cron, settings.tasks, clock, self._nudge)
        self.leases = LeaseKeeper(
            store,
            daemon=self.id,
            clock=clock,
            lease_ms=lease_ms,
            active=self.active,
            on_lost=self._lost,
        )
        self.recorder = Recorder(
            store,
            pg_store=conns.pg_store,
            consumer=self.id,
            batch_events=settings.recorder_batch,
            flush_interval=settings.recorder_interval,
            reclaim_after=settings.recorder_reclaim_after,
        )

    def _nudge(self) -> None:
        self.pump.nudge()

    def _start_job(self, job: ClaimedJob) -> None:
        self.executors[job.kind].acquire()  # now, so the next claim already counts it
        self.active[job.id] = job
        task = asyncio.create_task(self.execution.run(job))
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    def _finished(self, outcomes: Sequence[Outcome], _: Sequence[bool]) -> None:
        for outcome in outcomes:
            self.active.pop(outcome.job_id, None)

    def _lost(self, job_id: str) -> None:
        self.active.pop(job_id, None)

    async def serve(self, stop: asyncio.Event, drain: bool = False) -> None:
        """Run until `stop` is set (or, with `drain`, until no work is left)."""
        await self.cpu_pool.start()
        async with asyncio.TaskGroup() as group:
            services = [
                group.create_task(self.pump.run(), name="pump"),
                group.create_task(self.finisher.run(), name="finisher"),
                group.create_task(self.leases.run(), name="leases"),
                group.create_task(self.recorder.run(), name="recorder"),
                group.create_task(
                    listen_for_wakeups(self.conns.redis, self.conns.keys.wake_channel, self.pump),
                    name="wake-listener",
                ),
                group.create_task(_flush_logs_periodically(), name="log-flusher"),
                group.create_task(self.cron.run(), name="cron"),
            ]
            if drain:
                services.append(group.create_task(self._stop_when_drained(stop), name="drain"))
            # Everything alive now (modules, pools, connections) lives as long as the
            # daemon: moved out of the collector's sight, a full collection no longer
            # scans it, which keeps collector pauses off the jobs' start times.
            gc.freeze()
            notify("READY=1", f"STATUS=running as {self.id}")
            log.info("daemon ready", daemon=self.id, tasks=self.execution.registry.names())
            await stop.wait()
            notify("STOPPING=1")
            log.info("daemon stopping", daemon=self.id, running=len(self.active))
            await self._shutdown(services)
        log.info("daemon stopped", daemon=self.id, recorded=self.recorder.recorded)
        flush_logs()

    async def _shutdown(self, services: list[asyncio.Task[None]]) -> None:
        self.pump.stopping = True
        self.pump.nudge()
        await asyncio.wait([services[0]])
        running = list(self._job_tasks)
        if running:
            _, late = await asyncio.wait(running, timeout=self.settings.shutdown_grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("jobs cancelled at shutdown; their leases will expire", jobs=len(late))
        await self.finisher.flush()
        self.recorder.stopping = True
        await asyncio.wait([services[3]])
        for service in services:
            service.cancel()
        for executor in self.executors.values():
            await executor.close(wait=False)
        await self.conns.redis_store.forget_daemon(self.id)

    async def _stop_when_drained(self, stop: asyncio.Event) -> None:
        """Drain mode: stop once no job is waiting or running anywhere (the shutdown
        then records what is left in the stream)."""
        while not stop.is_set():
            await asyncio.sleep(0.01)
            if self.active or self._job_tasks:
                continue
            if await self.conns.redis_store.outstanding() == 0:
                stop.set()


async def _flush_logs_periodically() -> None:
    while True:
        await asyncio.sleep(0.1)
        flush_logs()
