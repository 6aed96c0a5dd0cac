"""One webhook sink at work: its consumer group on each queue's transition stream,
read by one daemon at a time.

Every daemon runs every configured sink, but only the holder of the sink's lease
delivers: a job's events then leave in seq order whichever daemon wrote them. The
holder renews the lease every third of its length and stops delivering as soon as
it cannot be sure it still holds it; another daemon takes over once it expires,
first taking every entry the group holds unacknowledged (the old holder's
deliveries in flight) and delivering those before anything new. A slow or dead
endpoint only makes the sink's group lag: the stream keeps what it has not
acknowledged, and job execution and the recorder never wait for it.

Each queue has its own stream (in its own slot), so the holder reads each through
an intake of its own, into the same lanes: a job is in one queue, so its events
still come in seq order. A queue made after the sink began is read from its start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from runner.config.notify import NotifySettings
from runner.daemon.resilience import Backoff, keep_going, report
from runner.errors import StoreError
from runner.events.feed import TaskNames
from runner.events.transition import transitions
from runner.logs import get_logger
from runner.notify.attempts import AttemptsLog
from runner.notify.delivery import Delivery, Poster, body_of
from runner.notify.lanes import REPLAY, Acks, Lanes
from runner.notify.metrics import WebhookMetrics
from runner.store import DEFAULT_QUEUE, RedisStore, SinkEntries, SinkStore

log = get_logger()

READ_COUNT = 20  # stream entries a read brings at most (each may hold hundreds of events)
BLOCK_MS = 1000  # a read waits this long for an entry
ACK_EVERY_S = 0.05  # acknowledgements gathered this long into one call
RELEASE_WITHIN_S = 1.0  # at stop, how long giving the lease up may take
QUEUES_CHECK_S = 1.0  # how soon a new queue's stream is read


class LeaseLost(Exception):
    """This daemon can no longer be sure it is the sink's only deliverer."""


class Sink:
    def __init__(
        self,
        settings: NotifySettings,
        store: RedisStore,
        attempts: AttemptsLog,
        daemon: str,
        lease_ms: int,
        *,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.queues = store  # the registry of queues, and each queue's store
        self.store = store.sink(settings.name)  # the default queue's: lease, replays
        self._grouped: set[str] = set()  # queues whose groups this daemon made sure of
        self._sink_is_new = False  # its group on the default stream was made just now
        self.names = TaskNames(store)
        self.daemon = daemon
        self.lease_ms = lease_ms
        self.poster = Poster(settings, self.store, attempts, daemon, metrics=metrics)
        self.window = max(256, settings.concurrency * 64)  # deliveries taken in at most
        self.service = f"notify {settings.name}"

    def _sink_of(self, queue: str) -> SinkStore:
        return self.queues.queue(queue).sink(self.name)

    async def ensure_groups(self) -> list[str]:
        """The sink's group on every queue's stream; the queues. A new sink reads from
        now on; a queue whose group is missing for a sink that had one on the default
        stream is new since the sink began, and is read from its start."""
        queues = await self.queues.queue_names(fresh=True)
        if DEFAULT_QUEUE not in self._grouped:
            self._sink_is_new = await self.store.ensure_group()
            self._grouped.add(DEFAULT_QUEUE)
        for queue in queues:
            if queue not in self._grouped:
                await self._sink_of(queue).ensure_group(from_start=not self._sink_is_new)
                self._grouped.add(queue)
        self._sink_is_new = False  # the queues found from now on are new since it began
        return queues

    async def run(self) -> None:
        """Deliver while holding the lease, wait for it otherwise; for ever."""
        await keep_going(self.service, self.ensure_groups)
        backoff = Backoff(cap=5.0)
        try:
            while True:
                try:
                    if await self.store.hold_lease(self.daemon, self.lease_ms):
                        await self._hold()
                    backoff.reset()
                except Exception as exc:  # the policy: log, pause, go on
                    await backoff.pause(self.service, exc)
                    if "NOGROUP" in str(exc):  # the stream was deleted (a flushed Redis)
                        self._grouped.clear()
                        await keep_going(self.service, self.ensure_groups)
                await asyncio.sleep(self.lease_ms / 3000)
        finally:
            await self.poster.close()
            with contextlib.suppress(Exception):  # else it only expires
                async with asyncio.timeout(RELEASE_WITHIN_S):
                    await self.store.release_lease(self.daemon)

    async def _hold(self) -> None:
        log.info("delivering webhooks", sink=self.name, daemon=self.daemon)
        acks = Acks()
        try:
            async with asyncio.TaskGroup() as group:
                lanes = Lanes(group, self.poster.deliver, acks, self.window)
                group.create_task(self._keep_lease(), name=f"{self.service} lease")
                group.create_task(self._intakes(group, lanes, acks), name=f"{self.service} queues")
                group.create_task(self._acknowledge(acks), name=f"{self.service} acks")
        except* LeaseLost as lost:
            log.warning("webhook delivery handed over", sink=self.name,
                        reason=str(lost.exceptions[0]))  # fmt: skip
        finally:
            with contextlib.suppress(Exception):  # unacknowledged: delivered again
                async with asyncio.timeout(RELEASE_WITHIN_S):
                    await self._ack(acks.take())

    async def _keep_lease(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                if not await self.store.hold_lease(self.daemon, self.lease_ms):
                    raise LeaseLost("another daemon holds the lease")
                renewed = time.monotonic()
            except StoreError as exc:
                if time.monotonic() - renewed > 0.8 * self.lease_ms / 1000:
                    raise LeaseLost(f"the lease could not be renewed: {exc}") from exc
                report(self.service, exc)

    async def _intakes(self, group: asyncio.TaskGroup, lanes: Lanes, acks: Acks) -> None:
        """An intake for every queue, started as queues appear."""
        started: set[str] = set()
        while True:
            queues = await keep_going(self.service, self.ensure_groups)
            for queue in queues:
                if queue not in started:
                    started.add(queue)
                    group.create_task(
                        self._intake(queue, lanes, acks), name=f"{self.service} {queue}"
                    )
            await asyncio.sleep(QUEUES_CHECK_S)

    async def _intake(self, queue: str, lanes: Lanes, acks: Acks) -> None:
        """The old holder's entries first, then new ones, while the window has room."""
        store = self._sink_of(queue)
        pending = await keep_going(
            self.service, lambda: store.take_pending(self.daemon, READ_COUNT)
        )
        if pending.events or pending.replays:
            log.info("took over unacknowledged webhook deliveries", sink=self.name, queue=queue,
                     entries=len(pending.events) + len(pending.replays))  # fmt: skip
        await self._take_in(queue, pending, lanes, acks)
        backoff = Backoff(cap=5.0)
        while True:
            await lanes.room.wait()
            try:
                read = await store.read(self.daemon, READ_COUNT, BLOCK_MS)
                backoff.reset()
            except StoreError as exc:
                await backoff.pause(self.service, exc)
                if "NOGROUP" in str(exc):
                    await keep_going(self.service, store.ensure_group)
                continue
            await self._take_in(queue, read, lanes, acks)

    async def _take_in(self, queue: str, read: SinkEntries, lanes: Lanes, acks: Acks) -> None:
        """Entries read become deliveries (those the sink wants), in stream order."""
        wanted = self.settings.states
        found = [t for e in read.events for t in transitions(e.id, e.payload)
                 if t.task is not None or t.to_state in wanted]  # fmt: skip
        named = await keep_going(self.service, lambda: self.names.name(found)) if found else []
        by_entry: dict[str, list[Delivery]] = {}
        for t in named:
            if self.settings.wants(t.to_state, t.task):
                entry_id = t.position.rpartition("/")[0]
                by_entry.setdefault(entry_id, []).append(Delivery(
                    t.event_id, t.job_id, t.seq, body_of(t.as_json()), (queue, entry_id),
                    t.at_ms,
                ))  # fmt: skip
        for entry in read.events:
            deliveries = by_entry.get(entry.id, [])
            acks.taken((queue, entry.id), len(deliveries))
            for delivery in deliveries:
                lanes.add(delivery)
        for entry in read.replays:
            replayed = _replayed(entry.id, entry.fields)
            acks.taken((REPLAY, entry.id), 0 if replayed is None else 1)
            if replayed is not None:
                lanes.add(replayed)

    async def _acknowledge(self, acks: Acks) -> None:
        backoff = Backoff(cap=5.0)
        while True:
            await acks.ready.wait()
            await asyncio.sleep(ACK_EVERY_S)
            done = acks.take()
            try:
                await self._ack(done)
                backoff.reset()
            except StoreError as exc:
                acks.give_back(done)
                await backoff.pause(self.service, exc)

    async def _ack(self, done: dict[str, list[str]]) -> None:
        """Acknowledge each queue's entries in its stream, the replays in theirs."""
        replays = done.pop(REPLAY, [])
        if replays or DEFAULT_QUEUE in done:
            await self.store.ack(done.pop(DEFAULT_QUEUE, []), replays)
        for queue, ids in done.items():
            await self._sink_of(queue).ack(ids, [])


def _replayed(entry_id: str, fields: dict[str, str]) -> Delivery | None:
    """A dead letter sent again; None for an entry that is not one (skipped)."""
    try:
        seq = int(fields["seq"])
        return Delivery(fields["event_id"], fields["job_id"], seq, fields["body"].encode(),
                        (REPLAY, entry_id))  # fmt: skip
    except (KeyError, ValueError):
        log.warning("replay entry skipped: not a dead letter", entry_id=entry_id)
        return None
