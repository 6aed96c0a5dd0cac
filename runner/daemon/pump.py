"""The pump: sleep until the earliest due job, claim what can start now, start it.

It claims, per kind, no more jobs than that kind's executor can start at once
(no prefetch: a full process pool never holds back io or async jobs). It wakes
early when capacity frees up or when any client enqueues a job sooner than the
one it sleeps for (a Redis pub/sub message, so this works across daemons).

A delayed job is claimed up to the lead before its due time (lead.py) and started
at that time exactly by the supervisor; the pump wakes that much earlier.

It claims only from the queues it serves (`[daemon] queues`, else every queue),
sharing free slots among those with due work by their weights (shares.py); the
queues' claims run at once, each in its own slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping

from runner.clock import Clock
from runner.config.settings import Settings
from runner.daemon.executors import Executor
from runner.daemon.lead import Lead
from runner.daemon.metrics import Metrics
from runner.daemon.resilience import Backoff, report
from runner.daemon.shares import Shares
from runner.jobs import ClaimedJob, ClaimResult
from runner.logs import get_logger
from runner.store import PRIORITY_AGING_MS, RedisStore

log = get_logger()

IDLE_POLL_S = 5.0  # a safety net: pub/sub wakes the pump long before this
QUEUES_CHECK_S = 1.0  # how soon a new queue's channels are listened to


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
        queues: Mapping[str, int] | None = None,
        aging_ms: int = PRIORITY_AGING_MS,
        lead: Lead | None = None,
    ) -> None:
        """`queues`: the queues served, each with its weight; None: every queue, each
        weighing 1."""
        self.lead = lead or Lead(0.0)
        # Jobs due up to this (ms) were asked for by the last claim: one due by then and
        # left is not claimable yet (a fairness turn, a rate), so it is asked for at its
        # due time, not a lead before it.
        self._horizon = 0.0
        # The one queue served, when the daemon serves one (its io threads may then
        # claim their own next job: self_claim.py); None with several, or before the
        # first look.
        self.sole_queue: str | None = None
        self.store = store
        self.queues = queues
        self.aging_ms = aging_ms
        self.shares = Shares()
        # Per queue, per kind, when its next job is due (None: none waits); a queue
        # missing here may have due work (new, or a wake-up said so): it is asked.
        self._due: dict[str, dict[str, float | None]] = {}
        # Wake-ups per queue so far: one that comes while a claim is on its way makes
        # that claim's news of the queue stale (it may not have seen the new job).
        self._offers: dict[str | None, int] = {}
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
        self._sleeping_until: float | None = None

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: claim batches, leases, the timer's spin."""
        self.batch, self.spin = settings.claim_batch, settings.timer_spin
        self.lease_ms = int(settings.lease_ttl * 1000)
        self.queues, self.aging_ms = settings.queues, int(settings.priority_aging * 1000)
        self.lead.configure(settings.lead)
        self._due.clear()

    @property
    def sleeping_until(self) -> float | None:
        """When the pump, asleep, means to look again (ms); None while awake or idle."""
        return self._sleeping_until

    def nudge(self) -> None:
        self.wake.set()

    def offer(self, due_ms: float | None, queue: str | None = None) -> None:
        """A job due at `due_ms` (None: at some time) was enqueued in `queue` (None: in
        any): ask that queue again, and wake if it is sooner than our plan."""
        self._offers[queue] = self._offers.get(queue, 0) + 1
        if queue is None:
            self._due.clear()
        else:
            self._due.pop(queue, None)
        asleep_until = self._sleeping_until
        if due_ms is None or asleep_until is None or due_ms - self.lead.ms < asleep_until:
            self.wake.set()

    async def served(self) -> dict[str, int]:
        """The queues this daemon claims from, each with its weight."""
        if self.queues is not None:
            return dict(self.queues)
        return dict.fromkeys(await self.store.queue_names(), 1)

    async def run(self) -> None:
        backoff = Backoff()
        while not self.stopping:
            try:
                due = await self._claim_once()
                backoff.reset()
            except Exception as exc:  # the service policy: log, pause (nudgeable), go on
                delay = backoff.next()
                report("pump", exc, retry_in_s=delay)
                due = self.clock.now() * 1000 + delay * 1000
            wake_at = None if due is None else self._claim_time(due)
            if wake_at is not None and wake_at <= self.clock.now() * 1000:
                continue
            await self._sleep_until(wake_at)

    def _claim_time(self, due_ms: float) -> float:
        """When to claim a job due at `due_ms`: the lead before it, unless the last
        claim asked for it already and it stayed (see _horizon)."""
        return due_ms if due_ms <= self._horizon else due_ms - self.lead.ms

    async def _claim_once(self) -> float | None:
        """Claim and start due jobs (and those due within the lead); returns when the
        next is due (ms; None: when woken)."""
        free = {kind: min(ex.capacity(), self.batch) for kind, ex in self.executors.items()}
        if not any(free.values()):
            return None
        weights = await self.served()
        self.sole_queue = next(iter(weights)) if len(weights) == 1 else None
        now = self.clock.now_ms()
        horizon = self.clock.now() * 1000 + self.lead.ms
        ready = [q for q in weights if self._has_due(q, free, horizon)]
        asks: dict[str, dict[str, int]] = {q: dict.fromkeys(free, 0) for q in ready}
        for kind, slots in free.items():
            for queue, share in self.shares.split(kind, slots, ready, weights).items():
                asks[queue][kind] = share
        asks = {q: limits for q, limits in asks.items() if any(limits.values())}
        offers = self._offer_counts(asks)
        sent = time.perf_counter()
        results = await self.store.claim_queues(
            asks, now, self.daemon, now + self.lease_ms, self.aging_ms, horizon_ms=horizon
        )
        if asks:
            self.lead.note(time.perf_counter() - sent)
        self._horizon = horizon
        for queue, limits in asks.items():
            self._started(queue, limits, results[queue], now)
        if offers != self._offer_counts(asks):  # woken meanwhile: ask those queues again
            for queue in asks:
                if offers[queue] != self._offer_counts([queue])[queue]:
                    self._due.pop(queue, None)
        return self._next_look(weights, now)

    def _offer_counts(self, queues: Iterable[str]) -> dict[str, tuple[int, int]]:
        return {q: (self._offers.get(q, 0), self._offers.get(None, 0)) for q in queues}

    def may_be_due(self, queue: str, kind: str, now_ms: int) -> bool:
        """Whether a job of `kind` may be due in `queue` now, as far as the last claims
        and wake-ups tell (read from io threads: one dict read at a time)."""
        due = self._due.get(queue)
        at = None if due is None else due.get(kind)
        return due is None or (at is not None and at <= now_ms)

    def note_set_aside(self, queue: str, set_aside: Iterable[tuple[str, str]]) -> None:
        """Jobs a claim found malformed and set aside: said in the log, counted."""
        for job_id, reason in set_aside:
            log.error("job set aside", job_id=job_id, state="failed", error=reason, queue=queue)
            if self.metrics is not None:
                self.metrics.set_aside()

    def _has_due(self, queue: str, free: Mapping[str, int], horizon: float) -> bool:
        due = self._due.get(queue)
        if due is None:
            return True
        return any(free[k] and at is not None and at <= horizon for k, at in due.items())

    def _started(
        self, queue: str, limits: Mapping[str, int], claimed: ClaimResult, now: int
    ) -> None:
        """Start what was claimed; note when the queue has more due, per kind."""
        self.note_set_aside(queue, claimed.set_aside)
        counts = dict.fromkeys(limits, 0)
        for job in claimed.jobs:
            counts[job.kind] += 1
            self.start(job)
        due = dict(claimed.next_due_ms)
        for kind, limit in limits.items():
            if limit and counts[kind] == limit:
                due[kind] = now  # there may be more due: ask again at once
        self._due[queue] = due

    def _next_look(self, weights: Mapping[str, int], now: int) -> float | None:
        """The soonest a served queue has a job due of a kind with a free slot (a kind
        whose slots are all taken is nudged when one frees)."""
        nexts = []
        for queue in weights:
            due = self._due.get(queue)
            if due is None:
                return now
            for kind, at in due.items():
                if at is not None and self.executors[kind].capacity() > 0:
                    nexts.append(at)
        return min(nexts) if nexts else None

    async def _sleep_until(self, wake_at: float | None) -> None:
        """Sleep until `wake_at` (ms) or a nudge, to a fraction of a millisecond.

        A sleeping process (all the more a virtual machine's idle CPU) wakes up to a
        few milliseconds after its timer; so the last `spin` seconds are spent
        yielding to the loop instead, which keeps serving every other task. It
        costs that much CPU per distinct due time, and nothing while jobs run
        back to back.
        """
        self._sleeping_until = wake_at
        timeout, spin = IDLE_POLL_S, 0.0
        if wake_at is not None:
            # With a lead, the held jobs spin to their due time (lead.py), not the pump.
            spin = 0.0 if self.lead.seconds else self.spin
            timeout = min(timeout, max(0.0, wake_at / 1000 - self.clock.now() - spin))
        if timeout > 0:
            try:
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            except TimeoutError:
                pass
        while spin and wake_at and not self.wake.is_set() and self.clock.now() * 1000 < wake_at:  # noqa: ASYNC110  # the spin, on purpose
            await asyncio.sleep(0)
        self.wake.clear()
        self._sleeping_until = None


async def listen_for_wakeups(
    store: RedisStore, pump: Pump, on_cancel: Callable[[str], None] | None = None
) -> None:
    """Listen on the channels of every queue the pump serves (each queue's are in its
    slot), starting on a queue's as soon as it is served."""
    listening: dict[str, asyncio.Task[None]] = {}
    backoff = Backoff(first=0.1)
    try:
        while True:
            try:
                served = await pump.served()
                backoff.reset()
            except Exception as exc:  # the service policy: log, pause, go on
                await backoff.pause("wake-listener", exc)
                continue
            for queue in served:
                if queue not in listening:
                    listening[queue] = asyncio.create_task(
                        listen_to_queue(store.queue(queue), pump, on_cancel)
                    )
            for queue in [q for q in listening if q not in served]:
                listening.pop(queue).cancel()
            await asyncio.sleep(QUEUES_CHECK_S)
    finally:
        for task in listening.values():
            task.cancel()


async def listen_to_queue(
    store: RedisStore, pump: Pump, on_cancel: Callable[[str], None] | None = None
) -> None:
    """Forward 'a job is due at T' messages of one queue to the pump, and running
    jobs cancelled by request to `on_cancel`.

    Resubscribes after a lost connection; the store nudges the pump on each
    subscription, since a message may have been missed meanwhile (a missed cancel
    is caught at the next lease renewal).
    """
    backoff = Backoff(first=0.1)
    queue = store.queue_name

    def on_due(due_ms: float | None) -> None:
        backoff.reset()
        pump.offer(due_ms, queue)

    while True:
        try:
            await store.listen_wakeups(on_due, on_cancel)
        except Exception as exc:  # the service policy: log, pause, go on
            await backoff.pause("wake-listener", exc)
