"""The pump: sleep until the earliest due job, claim what can start now, start it.

It claims, per kind, no more jobs than that kind's executor can start at once
(no prefetch: a full process pool never holds back io or async jobs). It wakes
early when capacity frees up or when any client enqueues a job sooner than the
one it sleeps for (a Redis pub/sub message, so this works across daemons).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from runner.clock import Clock
from runner.config.settings import Settings
from runner.daemon.executors import Executor
from runner.daemon.metrics import Metrics
from runner.daemon.resilience import Backoff, report
from runner.jobs import ClaimedJob
from runner.logs import get_logger
from runner.store import RedisStore

log = get_logger()

IDLE_POLL_S = 5.0  # a safety net: pub/sub wakes the pump long before this


class Pump:
    def __init__(
        self,
        store: RedisStore,
        *,
        executors: Mapping[str, Executor],
        start: Callable[[ClaimedJob], None],
        daemon: str,
        clock: Clock,
        batch: int,
        lease_ms: int,
        spin: float = 0.0,
    ) -> None:
        self.store = store
        self.executors = executors
        self.start = start
        self.daemon = daemon
        self.clock = clock
        self.batch = batch
        self.lease_ms = lease_ms
        self.spin = spin
        self.wake = asyncio.Event()
        self.stopping = False
        self.metrics: Metrics | None = None
        self._sleeping_until: int | None = None

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: claim batches, leases, the timer's spin."""
        self.batch, self.spin = settings.claim_batch, settings.timer_spin
        self.lease_ms = int(settings.lease_ttl * 1000)

    @property
    def sleeping_until(self) -> int | None:
        """When the pump, asleep, means to look again (ms); None while awake or idle."""
        return self._sleeping_until

    def nudge(self) -> None:
        self.wake.set()

    def offer(self, due_ms: int) -> None:
        """A job due at `due_ms` was enqueued somewhere: wake if it is sooner than our plan."""
        if self._sleeping_until is None or due_ms < self._sleeping_until:
            self.wake.set()

    async def run(self) -> None:
        backoff = Backoff()
        while not self.stopping:
            try:
                wake_at = await self._claim_once()
                backoff.reset()
            except Exception as exc:  # the service policy: log, pause (nudgeable), go on
                delay = backoff.next()
                report("pump", exc, retry_in_s=delay)
                wake_at = self.clock.now_ms() + int(delay * 1000)
            if wake_at is not None and wake_at <= self.clock.now_ms():
                continue
            await self._sleep_until(wake_at)

    async def _claim_once(self) -> int | None:
        """Claim and start due jobs; returns when to look again (None: when woken)."""
        limits = {kind: min(ex.capacity(), self.batch) for kind, ex in self.executors.items()}
        if not any(limits.values()):
            return None
        now = self.clock.now_ms()
        claimed = await self.store.claim_due(now, limits, self.daemon, now + self.lease_ms)
        for job_id, reason in claimed.set_aside:
            log.error("job set aside", job_id=job_id, state="failed", error=reason)
            if self.metrics is not None:
                self.metrics.set_aside()
        counts = dict.fromkeys(limits, 0)
        for job in claimed.jobs:
            counts[job.kind] += 1
            self.start(job)
        nexts = []
        for kind, limit in limits.items():
            if limit and counts[kind] == limit:
                return now  # there may be more due: claim again at once
            due = claimed.next_due_ms.get(kind)
            if due is not None and self.executors[kind].capacity() > 0:
                nexts.append(due)
        return min(nexts) if nexts else None

    async def _sleep_until(self, wake_at: int | None) -> None:
        """Sleep until `wake_at` (ms) or a nudge, to a fraction of a millisecond.

        A sleeping process (all the more a virtual machine's idle CPU) wakes up to a
        few milliseconds after its timer; so the last `spin` seconds are spent
        yielding to the loop instead, which keeps serving every other task. It
        costs that much CPU per distinct due time, and nothing while jobs run
        back to back.
        """
        self._sleeping_until = wake_at
        timeout = IDLE_POLL_S
        if wake_at is not None:
            timeout = min(timeout, max(0.0, wake_at / 1000 - self.clock.now() - self.spin))
        if timeout > 0:
            try:
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            except TimeoutError:
                pass
        while wake_at is not None and not self.wake.is_set() and self.clock.now_ms() < wake_at:  # noqa: ASYNC110  # the spin, on purpose
            await asyncio.sleep(0)
        self.wake.clear()
        self._sleeping_until = None


async def listen_for_wakeups(
    store: RedisStore, pump: Pump, on_cancel: Callable[[str], None] | None = None
) -> None:
    """Forward 'a job is due at T' messages from any client to the pump, and running
    jobs cancelled by request to `on_cancel`.

    Resubscribes after a lost connection; the store nudges the pump on each
    subscription, since a message may have been missed meanwhile (a missed cancel
    is caught at the next lease renewal).
    """
    backoff = Backoff(first=0.1)

    def on_due(due_ms: int | None) -> None:
        backoff.reset()
        if due_ms is None:
            pump.nudge()
        else:
            pump.offer(due_ms)

    while True:
        try:
            await store.listen_wakeups(on_due, on_cancel)
        except Exception as exc:  # the service policy: log, pause, go on
            await backoff.pause("wake-listener", exc)
