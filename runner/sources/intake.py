"""A batch of messages settled: jobs enqueued through runner's own client, then each
message acknowledged (or removed), or dead-lettered with its reason.

A message is let go only after its job was accepted: enqueue returned, the job new
or (a redelivery after a crash) already there under the same id. A job refused at
its task's max_queued is tried again until there is room (the source holds: the
bound is how its backlog is kept in check), never dropped. A batch that the
store refuses for its data (not for an outage) is retried one job at a time, so the
one message at fault is dead-lettered and the rest go on, instead of the whole
batch coming back for ever.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from runner.client.client import Client
from runner.config.sources import SourceSettings
from runner.errors import StoreError, StoreUnavailable, UsageError
from runner.jobs import EnqueueResult, NewJob
from runner.sources.mapping import Rejected, to_job
from runner.store import SourceMessage


@dataclass
class Settled:
    """What became of a batch: messages whose jobs were accepted, how many of those jobs
    are new, and the messages to dead-letter with their reasons."""

    accepted: list[SourceMessage] = field(default_factory=list)
    created: int = 0
    rejected: list[tuple[SourceMessage, str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return len(self.accepted) - self.created


@dataclass
class Mapped:
    """A batch mapped: the messages with their jobs, and those that make none."""

    jobs: list[tuple[SourceMessage, NewJob]] = field(default_factory=list)
    rejected: list[tuple[SourceMessage, str]] = field(default_factory=list)


def map_batch(client: Client, source: SourceSettings, messages: Sequence[SourceMessage]) -> Mapped:
    """Each message's job, or the reason it has none (CPU only: no round trip)."""
    mapped = Mapped()
    for message in messages:
        try:
            mapped.jobs.append((message, to_job(client, source, message)))
        except Rejected as exc:
            mapped.rejected.append((message, str(exc)))
    return mapped


async def admit(
    client: Client,
    source: SourceSettings,
    messages: Sequence[SourceMessage],
    mapped: Mapped | None = None,
) -> Settled:
    """Map (unless given the batch `mapped` already) and enqueue the batch; nothing is
    acknowledged here (the reader does it)."""
    if mapped is None:
        mapped = map_batch(client, source, messages)
    settled = Settled(rejected=list(mapped.rejected))
    jobs = mapped.jobs
    if not jobs:
        return settled
    try:
        results = await client.enqueue_many_results([job for _, job in jobs], wait=math.inf)
    except StoreUnavailable:
        raise
    except (StoreError, UsageError):
        await _one_by_one(client, jobs, settled)
        return settled
    _count(settled, [message for message, _ in jobs], results)
    return settled


async def _one_by_one(
    client: Client, jobs: list[tuple[SourceMessage, NewJob]], settled: Settled
) -> None:
    for message, job in jobs:
        try:
            results = await client.enqueue_many_results([job], wait=math.inf)
        except StoreUnavailable:
            raise
        except (StoreError, UsageError) as exc:
            settled.rejected.append((message, f"refused by runner: {exc}"))
            continue
        _count(settled, [message], results)


def _count(settled: Settled, messages: list[SourceMessage], results: list[EnqueueResult]) -> None:
    settled.accepted += messages
    settled.created += sum(1 for result in results if result.created)
