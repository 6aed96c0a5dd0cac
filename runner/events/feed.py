"""Following the transition stream as it grows: the live feed's, `runner events`' and
a waiting client's one way of hearing about transitions.

A feed reads without a consumer group (XREAD), so any number of readers follow the
stream and nothing they do changes what the recorders or webhook sinks see. It
blocks in Redis until an entry arrives: no polling. It starts after the last entry
(now), or after a position a reader was given (`Last-Event-ID`), reading the rest
of that entry first; the stream keeps entries for `[events] keep`, so a reader
that comes back within it misses nothing. One that comes back later is told how
far the stream was trimmed (`Gap`), never silently given less.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from runner.events.transition import Transition, split_position, transitions
from runner.store import RedisStore, StreamEntry, id_pair

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
    ) -> None:
        self.store = store
        self.keep = keep
        self.block_ms = block_ms
        self.names = TaskNames(store) if named else None
        self.last_entry = "0-0"

    async def start_now(self) -> None:
        """Follow from the stream's current end: only what is written from now on."""
        self.last_entry = (await self.store.stream_ends())[1]

    async def start_at_first(self) -> str:
        """Follow from the stream's first kept entry: all it still holds (the last
        `[events] keep`), then what is written. Returns the id of its last entry
        now: a reader that wants only what is there stops once caught_up() to it."""
        self.last_entry = "0-0"
        return (await self.store.stream_ends())[1]

    def caught_up(self, entry_id: str) -> bool:
        """Whether the feed has read up to `entry_id` (filtered out or not)."""
        return id_pair(self.last_entry) >= id_pair(entry_id)

    async def start_after(self, position: str) -> tuple[list[Transition], Gap | None]:
        """Follow from just after `position` (ValueError if it is not one): the rest of
        its entry, and whether entries between it and the stream's start were trimmed."""
        entry_id, index = split_position(position)
        first_kept, _ = await self.store.stream_ends()
        gap = None
        if first_kept != "0-0" and id_pair(first_kept) > id_pair(entry_id):
            gap = Gap(position, first_kept)
        self.last_entry = entry_id
        rest: list[Transition] = []
        for entry in await self.store.stream_entries(entry_id, 1):
            if entry.id == entry_id:
                rest = [t for t in transitions(entry.id, entry.payload) if _index(t) > index]
        return await self._kept(rest), gap

    async def next_batch(self, block_ms: int | None = None) -> list[Transition]:
        """The next transitions written (kept by the filter), waiting up to `block_ms`
        (the feed's default) for one; [] when none came in that time."""
        wait = self.block_ms if block_ms is None else block_ms
        entries = await self.store.read_stream_after(self.last_entry, READ_COUNT, wait)
        if not entries:
            return []
        self.last_entry = entries[-1].id
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
    return [t for entry in entries for t in transitions(entry.id, entry.payload)]


def _index(transition: Transition) -> int:
    return split_position(transition.position)[1]
