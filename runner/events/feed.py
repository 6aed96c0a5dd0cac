"""Following the transition stream as it grows: the live feed's, `runner events`' and
a waiting client's one way of hearing about transitions.

A feed reads without a consumer group (XREAD), so any number of readers follow the
stream and nothing they do changes what the recorders or webhook sinks see. It
blocks in Redis until an entry arrives: no polling. It starts after the last entry
(now), or after a position a reader was given (`Last-Event-ID`), reading the rest
of that entry first; the stream keeps entries for `[events] keep`, so a reader
that comes back within it misses nothing. One that comes back later is told how
far the stream was trimmed (`Gap`), never silently given less.

Each queue has its own stream. A feed of `every_queue` follows them all (a queue
made after it started, from that stream's start), in the order of their entry ids,
which on one server are the server's clock: a position names its queue
("<queue>@<entry>/<index>", the default queue's as before queues), and a feed
resuming after one takes that queue's stream after it and the others from its
millisecond on (an event of that same millisecond may come twice; its `event_id`
tells). A waiting client's feed follows one queue.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from runner.events.transition import Transition, parse_position, split_position, transitions
from runner.store import RedisStore, StreamEntry, id_pair

LAST_OF_MS = 18446744073709551615  # the greatest sequence of a stream entry id

READ_COUNT = 500  # entries a read brings at most
TASKS_REMEMBERED = 100_000  # job id -> task, learned from enqueue events


@dataclass(frozen=True)
class Gap:
    """The reader's position was trimmed away: events between it and `first_kept`
    (the oldest entry still in the stream) may be missing."""

    after: str
    first_kept: str


class TaskNames:
    """The task of each transition's job. Only a job's first event names its task, so
    the names are learned from those and remembered (the last TASKS_REMEMBERED), and
    looked up in Redis, one round trip per batch, for jobs enqueued before the feed
    started. A job Redis has forgotten keeps task None."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._known: OrderedDict[str, str] = OrderedDict()

    async def name(self, batch: Sequence[Transition]) -> list[Transition]:
        for t in batch:
            if t.task is not None:
                self._remember(t.job_id, t.task)
        missing = list({t.job_id for t in batch if t.job_id not in self._known})
        if missing:
            for job_id, task in (await self.store.job_tasks(missing)).items():
                self._remember(job_id, task)
        return [t if t.task else replace(t, task=self._known.get(t.job_id)) for t in batch]

    def _remember(self, job_id: str, task: str) -> None:
        self._known[job_id] = task
        self._known.move_to_end(job_id)
        if len(self._known) > TASKS_REMEMBERED:
            self._known.popitem(last=False)


class Feed:
    """Transitions from a starting point on, in stream order, as they are written."""

    def __init__(
        self,
        store: RedisStore,
        keep: Callable[[Transition], bool] = lambda _: True,
        block_ms: int = 5_000,
        *,
        named: bool = True,
        every_queue: bool = False,
    ) -> None:
        """`every_queue`: follow every queue's stream; else the store's queue's."""
        self.store = store
        self.keep = keep
        self.block_ms = block_ms
        self.names = TaskNames(store) if named else None
        self.every_queue = every_queue
        self.last: dict[str, str] = {}  # queue -> the last entry read of its stream

    @property
    def last_entry(self) -> str:
        """The last entry read of the store's own queue's stream."""
        return self.last.get(self.store.queue_name, "0-0")

    async def _queues(self) -> list[str]:
        if not self.every_queue:
            return [self.store.queue_name]
        return await self.store.queue_names()

    async def _ends(self) -> dict[str, str]:
        """Each queue's last entry now."""
        return {q: (await self.store.queue(q).stream_ends())[1] for q in await self._queues()}

    async def start_now(self) -> None:
        """Follow from the streams' current ends: only what is written from now on."""
        self.last = await self._ends()

    async def start_at_first(self) -> dict[str, str]:
        """Follow from the streams' first kept entries: all they still hold (the last
        `[events] keep`), then what is written. Returns their last entries now: a
        reader that wants only what is there stops once caught_up() to them."""
        ends = await self._ends()
        self.last = dict.fromkeys(ends, "0-0")
        return ends

    def caught_up(self, ends: dict[str, str]) -> bool:
        """Whether the feed has read up to these entries (filtered out or not)."""
        return all(id_pair(self.last.get(q, "0-0")) >= id_pair(e) for q, e in ends.items())

    async def start_after(self, position: str) -> tuple[list[Transition], Gap | None]:
        """Follow from just after `position` (ValueError if it is not one): the rest of
        its entry, and whether entries between it and its stream's start were
        trimmed. The other queues' streams from the position's millisecond on."""
        queue, entry_id, index = parse_position(position)
        store = self.store.queue(queue)
        first_kept, _ = await store.stream_ends()
        gap = None
        if first_kept != "0-0" and id_pair(first_kept) > id_pair(entry_id):
            gap = Gap(position, first_kept)
        ms = id_pair(entry_id)[0]
        since = f"{ms - 1}-{LAST_OF_MS}" if ms > 0 else "0-0"
        self.last = {q: since for q in await self._queues()}
        self.last[queue] = entry_id
        rest: list[Transition] = []
        for entry in await store.stream_entries(entry_id, 1):
            if entry.id == entry_id:
                found = transitions(entry.id, entry.payload, queue)
                rest = [t for t in found if _index(t) > index]
        return await self._kept(rest), gap

    async def next_batch(self, block_ms: int | None = None) -> list[Transition]:
        """The next transitions written (kept by the filter), waiting up to `block_ms`
        (the feed's default) for one; [] when none came in that time."""
        wait = self.block_ms if block_ms is None else block_ms
        for queue in await self._queues():
            self.last.setdefault(queue, "0-0")  # a queue new since: from its start
        entries = await self.store.read_streams_after(self.last, READ_COUNT, wait)
        if not entries:
            return []
        for entry in entries:
            if id_pair(entry.id) > id_pair(self.last[entry.queue]):
                self.last[entry.queue] = entry.id
        entries.sort(key=lambda e: id_pair(e.id))
        return await self._kept(_all(entries))

    async def follow(self) -> AsyncIterator[list[Transition]]:
        """Batches for ever (an empty one at least every `block_ms`, so a caller can
        notice a closed connection or a stop request)."""
        while True:
            yield await self.next_batch()

    async def _kept(self, batch: list[Transition]) -> list[Transition]:
        """The batch, each named with its task unless the feed was made without names
        (a reader that filters by job id alone need not look tasks up)."""
        if self.names is not None and batch:
            batch = await self.names.name(batch)
        return [t for t in batch if self.keep(t)]


def _all(entries: Sequence[StreamEntry]) -> list[Transition]:
    return [t for entry in entries for t in transitions(entry.id, entry.payload, entry.queue)]


def _index(transition: Transition) -> int:
    return split_position(transition.position)[1]
