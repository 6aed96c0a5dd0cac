"""The cron service: turns schedule ticks into jobs, exactly once across daemons.

Every daemon runs it. A tick becomes a job with a deterministic id (schedule
name + tick time), enqueued through the same script as any job, guarded by
the schedule's last handled tick in Redis: whichever daemon comes first
creates it, the others find it handled. The job is enqueued a moment before
its tick (LEAD) and due at the tick, so the pump, which already wakes to the
millisecond for delayed jobs, starts it on time.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from runner.clock import Clock
from runner.config.cron import CronSettings
from runner.config.settings import Settings, TaskSettings
from runner.cron import MISFIRE_AFTER, Schedule, tick_id, ticks_to_fire
from runner.daemon.metrics import Metrics
from runner.daemon.resilience import Backoff
from runner.jobs import NewJob, rfc3339_at
from runner.limits.caps import cap_fields
from runner.limits.fair import fair_fields
from runner.limits.rates import rate_fields
from runner.logs import get_logger
from runner.store import RedisStore

log = get_logger()

LEAD = timedelta(milliseconds=20)
IDLE_S = 60.0


@dataclass(frozen=True)
class CronEntry:
    settings: CronSettings
    schedule: Schedule


def entries(cron: Mapping[str, CronSettings]) -> dict[str, CronEntry]:
    return {name: CronEntry(c, Schedule(c.schedule, c.timezone)) for name, c in cron.items()}


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class CronService:
    def __init__(
        self,
        store: RedisStore,
        cron: Mapping[str, CronSettings],
        tasks: Mapping[str, TaskSettings],
        clock: Clock,
        on_fired: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.entries = entries(cron)
        self.tasks = tasks
        self.clock = clock
        self.on_fired = on_fired
        self.origin = f"cron:{socket.gethostname()}:{os.getpid()}"
        self.last: dict[str, datetime] = {}
        self.wake = asyncio.Event()
        self.metrics: Metrics | None = None

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: the schedules and the tasks they name."""
        self.update(settings.cron, settings.tasks)

    def update(self, cron: Mapping[str, CronSettings], tasks: Mapping[str, TaskSettings]) -> None:
        """New schedules from a reload; an unchanged schedule keeps its last tick."""
        new = entries(cron)
        for name in list(self.last):
            if (
                name not in new
                or new[name].settings.schedule != self.entries[name].settings.schedule
            ):
                del self.last[name]
        self.entries, self.tasks = new, tasks
        self.wake.set()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def load_state(self) -> None:
        """Each schedule's last handled tick, from Redis (shared by all daemons)."""
        now_ms = self.clock.now_ms()
        for name, entry in self.entries.items():
            if name not in self.last:
                queue = self.store.queue(entry.settings.queue_of(self.tasks))
                last_ms = await queue.cron_baseline(name, now_ms)
                self.last[name] = datetime.fromtimestamp(last_ms / 1000, UTC)

    async def run(self) -> None:
        backoff = Backoff(first=0.1, cap=1.0)
        while True:
            try:
                await self.load_state()
                await self.fire_due(self.now() + LEAD)
                backoff.reset()
            except Exception as exc:  # the service policy: log, pause, go on
                await backoff.pause("cron", exc)
                continue
            try:
                async with asyncio.timeout(self._seconds_to_next()):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()

    def _seconds_to_next(self) -> float:
        now = self.now()
        upcoming = [
            entry.schedule.next_after(max(self.last[name], now))
            for name, entry in self.entries.items()
        ]
        if not upcoming:
            return IDLE_S
        return max(0.0, min(IDLE_S, (min(upcoming) - LEAD - now).total_seconds()))

    async def fire_due(self, now: datetime) -> list[tuple[str, datetime, str]]:
        """Enqueue the ticks due by `now` under each schedule's misfire policy.

        Returns (schedule, tick, outcome) with outcome "scheduled", "already"
        (another daemon fired it) or "skipped" (overlap = skip).
        """
        jobs: list[NewJob] = []
        handled: dict[str, datetime] = {}
        for name, entry in self.entries.items():
            c = entry.settings
            grace = timedelta(seconds=c.misfire_grace)
            ticks = ticks_to_fire(entry.schedule, self.last[name], now, c.misfire, grace)
            jobs += [self._job(entry, tick) for tick in ticks]
            since = max(self.last[name], now - grace - MISFIRE_AFTER)
            latest = entry.schedule.between(since, now, limit=1)
            if latest:
                handled[name] = latest[-1]
        results = await self.store.enqueue_many(jobs, self.origin, self.clock.now_ms())
        self.last.update(handled)  # only now: a tick whose enqueue failed is tried again
        fired = []
        for job, result in zip(jobs, results, strict=True):
            name, tick = job.extra["cron"], datetime.fromisoformat(job.extra["tick"])
            outcome = (
                "scheduled"
                if result.created
                else "skipped"
                if result.state == "skipped"
                else "already"
            )
            fired.append((name, tick, outcome))
            self._log(name, tick, job.id, outcome)
            if self.metrics is not None:
                self.metrics.cron_tick(name, outcome)
        if any(result.created for result in results):
            self.on_fired()
        return fired

    def _job(self, entry: CronEntry, tick: datetime) -> NewJob:
        c = entry.settings
        task = self.tasks[c.task]
        arguments = {"args": c.args, "kwargs": c.kwargs}  # what its limits' keys name
        return NewJob(
            id=tick_id(c.name, tick),
            task=c.task,
            kind=task.kind,
            args_json=orjson.dumps(list(c.args)).decode(),
            kwargs_json=orjson.dumps(dict(c.kwargs)).decode(),
            due_at_ms=_ms(tick),
            max_attempts=task.max_attempts,
            extra={
                "cron": c.name,
                "tick": rfc3339_at(tick),
                **cap_fields(c.task, task.concurrency, task.concurrency_key, arguments),
                **rate_fields(
                    c.task, task.rate_interval_us, task.rate_burst, task.rate_key, arguments
                ),
                **fair_fields(c.task, task.fair_key, arguments),
            },
            guard=(c.name, _ms(tick), c.overlap),
            queue=c.queue_of(self.tasks),  # its tick record is in that queue's slot
            priority=task.priority,
        )

    def _log(self, name: str, tick: datetime, job_id: str, outcome: str) -> None:
        if outcome == "scheduled":
            log.info("cron tick enqueued", cron=name, tick=rfc3339_at(tick), job_id=job_id)
        elif outcome == "skipped":
            log.warning(
                "cron tick skipped: the previous run is still going", cron=name,
                tick=rfc3339_at(tick),
            )  # fmt: skip
