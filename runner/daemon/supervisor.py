"""The daemon: one supervisor running every service as a named task in one TaskGroup.

If any service dies, the TaskGroup cancels the rest and the process exits
non-zero, for systemd to restart it. Stopping follows one documented order:
stop claiming, let running jobs finish within the grace, cancel what is left,
flush outcomes to Redis, drain the stream to Postgres, close the pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import secrets
import socket
import traceback
from collections.abc import Coroutine, Sequence
from typing import Any

import orjson

from runner import __version__
from runner.clock import SYSTEM_CLOCK, Clock
from runner.config.settings import Settings
from runner.daemon.cpu_pool import CpuPool
from runner.daemon.cron_service import CronService
from runner.daemon.drain import Drain
from runner.daemon.execution import JobExecution
from runner.daemon.executors import Executor, Occupancy
from runner.daemon.finisher import Finisher
from runner.daemon.hand_out import HandOut
from runner.daemon.history_keeper import HistoryKeeper
from runner.daemon.lead import Lead, start_when_due
from runner.daemon.lease_keeper import LeaseKeeper
from runner.daemon.metrics import UNKNOWN_TASK, Metrics
from runner.daemon.metrics_server import GaugeRefresher, serve_metrics
from runner.daemon.pool_watch import PoolWatch
from runner.daemon.pools import make_pools, resize_pools
from runner.daemon.promoter import Promoter
from runner.daemon.pump import Pump, listen_for_wakeups
from runner.daemon.recorders import Recorders
from runner.daemon.reload import read_reload
from runner.daemon.retired_ids import RetiredIds
from runner.daemon.self_claim import Adoptions
from runner.daemon.stops import RunStops
from runner.daemon.watchdog import paused_note, reloading, run_notifier, status_or_reason
from runner.errors import StoreError
from runner.jobs import ClaimedJob, Outcome
from runner.logs import flush_logs, flush_logs_periodically, get_logger, reopen_log_file, set_level
from runner.notify.metrics import WebhookMetrics
from runner.notify.service import NotifyService
from runner.servers.connect import Connections
from runner.sources.metrics import SourceMetrics
from runner.sources.service import SourcesService
from runner.store import DaemonInfo, HistoryStore, Parking, PgStore
from runner.systemd import notify
from runner.tasks import TaskRegistry

log = get_logger()

STOP_WRITES_S = 10.0  # at stop, how long outcomes and events may take to be written


def new_daemon_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Daemon(RunStops, Adoptions):
    def __init__(
        self,
        settings: Settings,
        registry: TaskRegistry,
        conns: Connections,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.conns = conns
        self.clock = clock
        self.id = new_daemon_id()
        self.active: dict[str, ClaimedJob] = {}  # claimed here, outcome not yet in Redis
        # Of those, the runs (job id, claim) whose outcome is on its way. A run is named
        # by its claim, never by the job id alone: a job cancelled as its body ends can
        # be retried and claimed here again before the first run's outcome is answered.
        self._ended: set[tuple[str, int]] = set()
        self._job_tasks: dict[asyncio.Task[None], ClaimedJob] = {}
        # Runs (job id, claim) cancelled by request whose claim this daemon may not have
        # seen yet (the message can overtake the claim's reply) -> when (monotonic).
        self._cancelled: dict[tuple[str, int], float] = {}
        self.reload_requested = asyncio.Event()
        self.reload_failed: str | None = None
        lease_ms = int(settings.lease_ttl * 1000)
        self.executors: dict[str, Executor] = make_pools(settings, self.nudge)
        store = conns.redis_store
        self.finisher = Finisher(store, self.id, clock, self._finished)
        self.execution = JobExecution(registry, self.executors, self._submit, clock)
        self.pump = Pump(
            store,
            executors=self.executors,
            start=self.start_claimed,
            daemon=self.id,
            clock=clock,
            batch=settings.claim_batch,
            lease_ms=lease_ms,
            spin=settings.timer_spin,
            queues=settings.queues,
            aging_ms=int(settings.priority_aging * 1000),
            lead=Lead(settings.lead),
        )
        self.cron = CronService(store, settings.cron, settings.tasks, clock, self.nudge)
        self.leases = LeaseKeeper(
            store,
            daemon=self.id,
            clock=clock,
            lease_ms=lease_ms,
            active=self.active,
            on_lost=self._lost,
            info=DaemonInfo.of_this_process(clock.now_ms(), __version__),
            pools=self.occupancy,
        )
        self.pool_watch = PoolWatch(store, self.occupancy, clock, settings.pools_full_warning)
        self.recorder = Recorders(
            store, pg_store=conns.pg_store, consumer=self.id, settings=settings
        )
        self.promoter = Promoter(Parking(
            store, self._history_store, settings.park_horizon, clock, f"daemon:{self.id}"
        ))  # fmt: skip
        self.history = HistoryKeeper(
            HistoryStore(conns.pg_store), clock, settings.keep_history,
            retired=RetiredIds(store, conns.pg_store, clock),
        )  # fmt: skip
        # Off unless [metrics] listen is set: then not even the per-job counts are kept.
        self.metrics = (
            Metrics(self.id, __version__, self._pool_figures) if settings.metrics_listen else None
        )
        figures = self.metrics.registry if self.metrics is not None else None
        self.webhooks = NotifyService(
            store, conns.pg_store, self.id, settings,
            metrics=WebhookMetrics(figures) if figures is not None else None,
        )  # fmt: skip
        self.execution.metrics = self.pump.metrics = self.leases.metrics = self.metrics
        self.cron.metrics = self.recorder.metrics = self.metrics
        self.sources = SourcesService(
            settings, store, conns.pg_store, redis_url=conns.redis_url, consumer=self.id,
            clock=clock,
            metrics=SourceMetrics(figures) if figures is not None else None,
        )  # fmt: skip
        self.execution.hand_out = HandOut(self.sources.client)  # fan-outs, by its client

    async def _history_store(self) -> PgStore:
        return self.conns.pg_store

    def cpu_pool(self) -> CpuPool:
        pool = self.executors["cpu"]
        assert isinstance(pool, CpuPool)
        return pool

    def nudge(self) -> None:
        self.pump.nudge()

    def _running_by_kind(self) -> dict[str, int]:
        running = dict.fromkeys(self.executors, 0)
        for job in self.active.values():
            running[job.kind] = running.get(job.kind, 0) + 1
        return running

    def occupancy(self) -> dict[str, Occupancy]:
        """Each kind's slots now: in use, free, held past a timeout (`runner status`)."""
        return {kind: executor.occupancy() for kind, executor in self.executors.items()}

    def _pool_figures(self) -> dict[str, tuple[int, int]]:
        """Per kind: jobs running here and free slots, read when /metrics is scraped."""
        running = self._running_by_kind()
        return {kind: (running[kind], ex.capacity()) for kind, ex in self.executors.items()}

    def start_claimed(self, job: ClaimedJob) -> None:
        if self._cancelled.pop((job.id, job.claim), None) is not None:
            log.info("job cancelled before it started", job_id=job.id, task=job.task,
                     attempt=job.attempt, state="cancelled")  # fmt: skip
            return
        slot = self.executors[job.kind]
        slot.acquire()  # now, so the next claim already counts it
        self.active[job.id] = job
        if job.due_at_ms <= self.clock.now() * 1000:
            self._begin(job, slot)
            return
        spin = self.settings.timer_spin  # claimed inside the lead: held until its due time
        self._track(job, start_when_due(job, slot, self._begin, self.clock, spin))

    def _begin(self, job: ClaimedJob, slot: Executor) -> None:
        if self.active.get(job.id) is not job:
            # Stopped while held (a cancel, a lost lease): the stop cancels the hold one
            # loop step later (stops.py), and the hold may reach its due time first.
            slot.release()
            return
        attempt = self.execution.start(job, slot)
        if attempt is not None:  # else it ended before it began; its outcome is on its way
            self._track(job, attempt)

    def _track(self, job: ClaimedJob, work: Coroutine[Any, Any, None]) -> None:
        """The job's task: the one a cancel by request stops."""
        task = asyncio.create_task(work)
        self._job_tasks[task] = job
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        """Every job task's end is observed: one that raised (a bug in runner, since
        JobExecution turns whatever a task raises into an outcome) still fails its
        job, so it neither stays in `active` with its lease renewed for ever nor
        vanishes unseen."""
        job = self._job_tasks.pop(task, None)
        if job is None or task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error(
            "job crashed in runner; failing it", job_id=job.id, task=job.task,
            attempt=job.attempt, state="failed", error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
        if self.active.get(job.id) is job and not self._has_ended(job):
            detail = orjson.dumps({"error": f"runner failed running it: {exc!r}"}).decode()
            outcome = Outcome(
                job.id, job.attempt, job.claim, "fail", error=repr(exc), detail_json=detail,
                queue=job.queue,
            )  # fmt: skip
            self._submit(outcome)

    def _submit(self, outcome: Outcome) -> None:
        self._ended.add((outcome.job_id, outcome.claim))
        self.finisher.submit(outcome)

    def _finished(self, outcomes: Sequence[Outcome], replies: Sequence[int]) -> None:
        """Outcomes answered by Redis: their runs leave `active`, unless the job was
        claimed here again meanwhile (a newer run of the same id stays)."""
        if self.metrics is not None:
            self._count_finished(self.metrics, outcomes, replies)
        for outcome in outcomes:
            job = self.active.get(outcome.job_id)
            if job is not None and job.claim == outcome.claim:
                del self.active[outcome.job_id]
            self._ended.discard((outcome.job_id, outcome.claim))

    def _count_finished(
        self, metrics: Metrics, outcomes: Sequence[Outcome], replies: Sequence[int]
    ) -> None:
        for outcome, reply in zip(outcomes, replies, strict=True):
            job = self.active.get(outcome.job_id)
            metrics.finished(job.task if job else UNKNOWN_TASK, outcome.action, reply)

    async def serve(self, stop: asyncio.Event, drain: bool = False) -> None:
        """Run until `stop` is set (or, with `drain`, until no work is left)."""
        await self.cpu_pool().start()
        claims = self.let_threads_claim()
        async with asyncio.TaskGroup() as group:
            coroutines: dict[str, Coroutine[Any, Any, None]] = {
                "pump": self.pump.run(),
                "finisher": self.finisher.run(),
                "leases": self.leases.run(),
                "recorder": self.recorder.run(),
                "wake-listener": listen_for_wakeups(
                    self.conns.redis_store, self.pump, self._cancel_requested
                ),
                "log-flusher": flush_logs_periodically(),
                "cron": self.cron.run(),
                "pool-watch": self.pool_watch.run(),
                "promoter": self.promoter.run(),
                "history": self.history.run(),
                "notify": self.webhooks.run(),
                "notifier": run_notifier(self.status_line),
                "reloader": self._reload_on_request(),
                "sources": self.sources.run(),
            }
            drainer = Drain(
                self.conns.redis_store, lambda: bool(self.active or self._job_tasks), stop
            )
            if drain:
                coroutines["drain"] = drainer.run()
            if self.metrics is not None and self.settings.metrics_listen:
                refresher = GaugeRefresher(
                    self.metrics, self.conns.redis_store, self.conns.pg_store, self.clock,
                    lambda: self.settings.tasks,
                )  # fmt: skip
                coroutines["metrics"] = serve_metrics(
                    self.metrics, self.settings.metrics_listen, refresher
                )
            services = {name: group.create_task(c, name=name) for name, c in coroutines.items()}
            for service in services.values():
                service.add_done_callback(functools.partial(self._service_ended, stop))
            # Everything alive now (modules, pools, connections) lives as long as the
            # daemon: moved out of the collector's sight, a full collection no longer
            # scans it, which keeps collector pauses off the jobs' start times.
            gc.freeze()
            notify("READY=1", f"STATUS=running as {self.id}")
            log.info("daemon ready", daemon=self.id, tasks=self.execution.registry.names())
            await stop.wait()
            notify("STOPPING=1")
            log.info("daemon stopping", daemon=self.id, running=len(self.active))
            recorded = await self._shutdown(services)
            await drainer.say_what_waits(self.conns.pg_store, recorded, STOP_WRITES_S)
        claims.close()
        log.info("daemon stopped", daemon=self.id, recorded=self.recorder.recorded)
        flush_logs()

    def _service_ended(self, stop: asyncio.Event, service: asyncio.Task[None]) -> None:
        """A service ends only when the daemon stops it. Any other end is a bug in
        runner (every failure around it is handled inside the service): say so in
        one clear last line; the TaskGroup then stops the daemon with an error,
        for systemd to restart it."""
        if service.cancelled() or (stop.is_set() and service.exception() is None):
            return
        exc = service.exception()
        log.critical(
            "service stopped unexpectedly; the daemon exits", service=service.get_name(),
            error=f"{type(exc).__name__}: {exc}" if exc else "returned",
            traceback="".join(traceback.format_exception(exc)[-12:]) if exc else None,
        )  # fmt: skip
        flush_logs()
        stop.set()

    async def _shutdown(self, services: dict[str, asyncio.Task[None]]) -> bool:
        """Stop claiming; give running jobs the grace; hand back the rest, uncounted;
        record everything (True if it was); close the pools. Sources stop first: no new
        work comes in while the rest winds down, and each settles the batch in hand."""
        await self.sources.stop()
        self.pump.stopping = True
        self.pump.nudge()
        await asyncio.wait([services["pump"]])
        await self._wind_down(self.settings.shutdown_grace)
        await self._bounded(self.finisher.flush(), "outcomes not written; leases will expire")
        self.recorder.stopping = True
        _, unfinished = await asyncio.wait([services["recorder"]], timeout=STOP_WRITES_S)
        if unfinished:
            log.warning("events left unrecorded in the stream; another daemon will take them over")
        for service in services.values():
            service.cancel()
        for executor in self.executors.values():
            await executor.close(wait=False)
        with contextlib.suppress(StoreError):  # a heartbeat left behind only ages out
            await self.conns.redis_store.forget_daemon(self.id)
        return not unfinished

    async def _bounded(self, work: Coroutine[Any, Any, None], if_late: str) -> None:
        """A store that is down must not hold the exit for ever: nothing is lost by
        leaving (leases expire, unacknowledged events are taken over)."""
        try:
            async with asyncio.timeout(STOP_WRITES_S):
                await work
        except TimeoutError:
            log.warning(if_late)

    async def status_line(self) -> str:
        """Counts for systemctl status; a paused task and maintenance mode are read
        from Redis each time, since any host may pause or resume."""
        due = await self.conns.redis_store.due_counts(self.clock.now_ms())
        paused, maintenance = await self.conns.redis_store.paused_summary()
        running = self._running_by_kind()
        text = (
            f"running {sum(running.values())} (async {running['async']}, io {running['io']},"
            f" cpu {running['cpu']}); due {sum(due.values())}; recorded {self.recorder.recorded}"
        )
        text += paused_note(paused, maintenance)
        if self.reload_failed:
            text += f"; last reload failed: {self.reload_failed}"
        return text

    async def _reload_on_request(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            reloading()
            try:
                await self.reload()
            except Exception as exc:  # applying half-failed: say so, keep serving
                log.error("reload failed while applying", error=f"{type(exc).__name__}: {exc}")
                self.reload_failed = f"{type(exc).__name__} while applying"
            notify("READY=1", f"STATUS={await status_or_reason(self.status_line)}")

    async def reload(self) -> None:
        """Re-read the config; apply what changed, or keep everything if it is invalid:
        each service takes its own part, the pools are resized for new jobs."""
        loaded = await read_reload(self.settings)
        if isinstance(loaded, str):
            self.reload_failed = loaded
            return
        old, self.settings = self.settings, loaded.settings
        self.execution.registry = loaded.registry
        set_level(self.settings.log_level)
        reopen_log_file()  # logrotate's postrotate runs `systemctl reload runner`
        for service in (self.pump, self.leases, self.recorder, self.cron, self.promoter,
                        self.history, self.pool_watch, self.sources,
                        self.webhooks):  # fmt: skip
            service.configure(self.settings)
        await resize_pools(self.executors, old, self.settings, self.nudge)
        self.pump.nudge()
        self.reload_failed = None
        loaded.log_applied()
