"""The recorder: drains the transition stream into PostgreSQL in batches.

A batch is flushed at `batch_events` events or `flush_interval` after its first
event, whichever comes first. Entries are acknowledged only after Postgres
committed them (and trimmed from the stream once `[events] keep` has passed);
while Postgres is down the batch is retried and nothing more is read, so Redis
keeps the backlog. Entries that a dead daemon read but never acknowledged are
taken over after `reclaim_after`.
Inserts are keyed by (job id, seq), so writing an entry twice is harmless.
A finished job stays in Redis until its last transition is committed; only then
does the recorder give it its `keep_finished` expiry, so a job id is never free
while its history is unwritten.

The stream is shared with every other daemon and anyone who can write to Redis,
so an entry may not be what runner's scripts write. Postgres is the judge: a
batch it rejects as data is split in halves until the culprit entries stand
alone; a culprit event is written with its detail replaced, and what still
cannot be written moves to the dead-letter stream with the reason. Nothing is
dropped and nothing blocks the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from runner.config.settings import Settings
from runner.daemon.metrics import Metrics
from runner.daemon.resilience import Backoff, keep_going
from runner.errors import StoreDataError, StoreError
from runner.logs import get_logger
from runner.store import PgStore, RedisStore, StreamEntry, StreamSet

log = get_logger()

SetAside = list[tuple[StreamEntry, str]]
TRIM_EVERY_S = 1.0
GATHER_S = 0.01  # between the reads that fill a batch (see _collect)


@dataclass
class _Written:
    """What became of a batch: entries set aside, and the jobs Postgres now holds
    as finished (id, seq), which Redis may forget from now on."""

    aside: SetAside = field(default_factory=list)
    finished: list[tuple[str, int, str]] = field(default_factory=list)  # id, seq, queue


class Recorder:
    def __init__(
        self,
        redis_store: RedisStore,
        *,
        pg_store: PgStore,
        consumer: str,
        batch_events: int,
        flush_interval: float,
        reclaim_after: float = 30.0,
        keep: float = 120.0,
        queues: Sequence[str] | None = None,
    ) -> None:
        """`queues`: the queues whose streams it records as one (see
        store/redis/stream_set.py); None: the store's own queue."""
        self.redis_store = redis_store
        self.streams = StreamSet(redis_store, queues or [redis_store.queue_name])
        self.pg_store = pg_store
        self.consumer = consumer
        self.batch_events = batch_events
        self.flush_interval = flush_interval
        self.reclaim_after_ms = int(reclaim_after * 1000)
        self.recorded = 0
        self.stopping = False
        self.metrics: Metrics | None = None
        self.keep_ms = int(keep * 1000)
        self._next_reclaim = 0.0
        self._next_trim = 0.0

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: how many events a statement, how long a batch waits,
        how long the stream keeps what was recorded."""
        self.batch_events = settings.recorder_batch
        self.flush_interval = settings.recorder_interval
        self.keep_ms = int(settings.events_keep * 1000)

    async def run(self) -> None:
        """Record until asked to stop, then drain what is left.

        Stopping is a flag, not a cancellation: a blocking stream read ends by
        itself within `flush_interval`, and no batch is cut in half.
        """
        await keep_going("recorder", self.streams.ensure_event_group)
        backoff = Backoff()
        while not self.stopping:
            try:
                await self.record_batch(block=True)
                await self._trim()
                backoff.reset()
            except Exception as exc:  # every failure is the store's or data's: pause, go on
                await backoff.pause("recorder", exc)
                if "NOGROUP" in str(exc):  # the stream was deleted (a flushed or new Redis)
                    await keep_going("recorder", self.streams.ensure_event_group)
        await keep_going("recorder", self.drain)
        # Everything this consumer read is acknowledged: leave the group tidy.
        await keep_going("recorder", lambda: self.streams.forget_consumer(self.consumer))

    async def _trim(self) -> None:
        """Once a second: the stream keeps recorded entries only for `[events] keep`
        (and while another reader, a webhook sink, has not acknowledged them)."""
        if time.monotonic() < self._next_trim:
            return
        self._next_trim = time.monotonic() + TRIM_EVERY_S
        await self.streams.trim_events(self.keep_ms, int(time.time() * 1000))

    async def drain(self) -> None:
        """Record everything in the stream now."""
        while await self.record_batch(block=False):
            pass

    async def record_batch(self, block: bool) -> int:
        """Read a batch and record it, at most `batch_events` events a statement: one
        read may bring many entries of thousands of events each (big enqueue_many
        calls), which as one statement could outlast the command timeout and then
        be retried for ever.

        The statements run one after the other; each chunk's Redis steps after its
        commit (its finished jobs' expiry, its acknowledgement) run while the next
        chunk's statement does, in order: a third of a chunk's time went to them, and
        the stream backlog a busy daemon leaves grew by as much."""
        chunks = event_chunks(await self._collect(block), self.batch_events)
        # An entry split over several chunks is acknowledged with its last part only,
        # which is written after every earlier part committed: a crash in between
        # leaves it pending, and a replay writes nothing twice.
        last = {(e.queue, e.id): n for n, chunk in enumerate(chunks) for e in chunk}
        done = 0
        settling: asyncio.Task[int] | None = None
        try:
            for n, chunk in enumerate(chunks):
                written = await self._write_timed(chunk)
                if settling is not None:
                    done += await settling
                ack = [e for e in chunk if last[(e.queue, e.id)] == n]
                settling = asyncio.create_task(self._settle(chunk, ack, *written))
                settling.add_done_callback(_seen)
            if settling is not None:
                done += await settling
        except BaseException:
            if settling is not None and not settling.done():
                settling.cancel()  # unacknowledged: read again or taken over, written once
            raise
        return done

    async def _write_timed(self, entries: Sequence[StreamEntry]) -> tuple[_Written, float]:
        began = time.perf_counter()
        written = await self._write([e for e in entries if e.payload is not None])
        return written, time.perf_counter() - began

    async def _settle(
        self, entries: Sequence[StreamEntry], ack: Sequence[StreamEntry], written: _Written,
        seconds: float,
    ) -> int:  # fmt: skip
        """A committed chunk's Redis steps: entries set aside, finished jobs' expiry,
        acknowledgement; returns the events it accounts for."""
        aside = written.aside + [
            (e, "no 'e' field: not an entry runner wrote") for e in entries if e.payload is None
        ]
        if aside:
            log.error(
                "stream entries set aside: postgres cannot take them",
                entries=len(aside),
                entry_ids=[e.id for e, _ in aside][:20],
                error=aside[0][1],
            )
            await self.streams.set_events_aside(aside)
        # Before the ack: if Redis fails in between, the batch is written again
        # (harmless), rather than leaving finished jobs in Redis for ever.
        await self.streams.forget_recorded(written.finished, int(time.time() * 1000))
        await self.streams.ack_events(ack)
        count = sum(_entry_events(e) for e in entries if e.payload is not None)
        self.recorded += count
        if self.metrics is not None:
            self.metrics.recorded(count, seconds)
        return count + len(aside)

    async def _collect(self, block: bool) -> list[StreamEntry]:
        """A batch: what the first read brings (waiting up to `flush_interval` for it),
        and what comes until `flush_interval` after it or the batch is full. After the
        first, reads are spaced GATHER_S apart rather than each waiting for the next
        entry: every claim and finish writes an entry, and a read per entry would cost
        more than the statement (all the more with a recorder per queue)."""
        entries = _counted(await self._reclaim_stale())
        count = sum(map(_entry_events, entries))
        first_wait = int(self.flush_interval * 1000) if block and not entries else None
        read = _counted(
            await self.streams.read_events(self.consumer, self.batch_events, first_wait)
        )
        entries += read
        count += sum(map(_entry_events, read))
        deadline = time.monotonic() + self.flush_interval
        while read and count < self.batch_events:
            if block:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(left, GATHER_S))
            read = _counted(await self.streams.read_events(self.consumer, self.batch_events, None))
            entries += read
            count += sum(map(_entry_events, read))
            if not read and not block:
                break  # drained: return, so the caller can notice a stop request
            read = read or entries  # blocking: an empty read only ends at the deadline
        return entries

    async def _reclaim_stale(self) -> list[StreamEntry]:
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + max(self.reclaim_after_ms / 4000, 0.5)
        stale = await self.streams.claim_stale_events(
            self.consumer, self.reclaim_after_ms, self.batch_events
        )
        if stale:
            log.info("took over unrecorded events of a stopped daemon", entries=len(stale))
        return stale

    async def _write(self, entries: Sequence[StreamEntry]) -> _Written:
        """Write entries, retried until Postgres takes them, whatever the outage;
        returns the entries set aside as data Postgres rejects, and the jobs now
        recorded as finished.

        Any failure but a data error is a passing one (the server is down, a
        deadlock) or unknown: pause and try the whole batch again (idempotent).
        """
        backoff = Backoff(first=0.1, cap=1.0)
        while True:
            written = _Written()
            try:
                await self._write_or_isolate(entries, written)
                return written
            except StoreError as exc:
                await backoff.pause("recorder", exc, events=sum(map(_entry_events, entries)))

    async def _write_or_isolate(self, entries: Sequence[StreamEntry], written: _Written) -> None:
        if not entries:
            return
        try:
            written.finished += await self.pg_store.record([e.payload or "[]" for e in entries])
            return
        except StoreDataError as exc:
            if len(entries) == 1:
                await self._write_event_by_event(entries[0], str(exc), written)
                return
            log.warning("postgres rejected a batch; isolating the bad entries", error=str(exc))
        half = len(entries) // 2
        await self._write_or_isolate(entries[:half], written)
        await self._write_or_isolate(entries[half:], written)

    async def _write_event_by_event(
        self, entry: StreamEntry, error: str, written: _Written
    ) -> None:
        """One entry Postgres rejects: write its events one at a time; an event whose
        detail is at fault is written with the detail replaced; an entry with any
        event that still cannot be written is set aside whole, as it was."""
        try:
            events = orjson.loads(entry.payload or "")
        except orjson.JSONDecodeError:
            written.aside.append((entry, f"not JSON: {error}"))
            return
        if not isinstance(events, list):
            written.aside.append((entry, f"not a JSON array of events: {error}"))
            return
        for event in events:
            problem = await self._write_event(event, written)
            if problem:
                written.aside.append((entry, problem))
                return

    async def _write_event(self, event: Any, written: _Written) -> str | None:
        """Write one event; the reason it could not be written, or None."""
        try:
            written.finished += await self.pg_store.record([orjson.dumps([event]).decode()])
            return None
        except StoreDataError as exc:
            error = str(exc)
        if not (isinstance(event, list) and len(event) == 8):
            return f"not an event [job_id, seq, from, to, at, daemon, attempt, detail]: {error}"
        detail = orjson.dumps({"undecodable_detail": str(event[7])[:1000]}).decode()
        quarantined = [*event[:7], detail]
        try:
            written.finished += await self.pg_store.record([orjson.dumps([quarantined]).decode()])
        except StoreDataError as exc:
            return f"event rejected by postgres: {exc}"
        log.error("event detail quarantined", job_id=str(event[0]), seq=event[1], error=error)
        return None


def _seen(task: asyncio.Task[int]) -> None:
    """A chunk's Redis steps that failed while the next statement failed too: the
    next statement's failure is the one raised, this one is not left unretrieved."""
    if not task.cancelled():
        task.exception()


def event_chunks(entries: Sequence[StreamEntry], most: int) -> list[list[StreamEntry]]:
    """The entries in order, in groups of at most `most` events; an entry with more is
    cut into parts of `most` (each part keeps the entry's id)."""
    chunks: list[list[StreamEntry]] = []
    count = 0
    for part in (part for entry in entries for part in _parts(entry, most)):
        events = _entry_events(part)
        if not chunks or count + events > most:
            chunks.append([])
            count = 0
        chunks[-1].append(part)
        count += events
    return chunks


def _parts(entry: StreamEntry, most: int) -> list[StreamEntry]:
    """The entry, or its events cut in parts of at most `most` when it has more. An
    entry that is not a JSON array stays whole, for the writer to set aside."""
    if entry.payload is None or _entry_events(entry) <= most:
        return [entry]
    try:
        events = orjson.loads(entry.payload)
    except orjson.JSONDecodeError:
        return [entry]
    if not isinstance(events, list):
        return [entry]
    texts = [orjson.dumps(events[i : i + most]).decode() for i in range(0, len(events), most)]
    return [entry._replace(payload=text, events=count_events(text)) for text in texts]


def _counted(entries: list[StreamEntry]) -> list[StreamEntry]:
    """The entries as read, each with its events counted: a batch, its chunks and its
    tally all need the count, which scans the whole payload (an entry of a 200-job
    claim is tens of kilobytes)."""
    return [
        e if e.payload is None or e.events >= 0 else e._replace(events=count_events(e.payload))
        for e in entries
    ]


def _entry_events(entry: StreamEntry) -> int:
    if entry.payload is None:
        return 1
    return entry.events if entry.events >= 0 else count_events(entry.payload)


def count_events(payload: str) -> int:
    """Events in one stream entry, without decoding it: event arrays are separated by
    ',["' (a quote inside a string, an id or a detail, is always escaped)."""
    return 0 if payload == "[]" else payload.count(',["') + 1
