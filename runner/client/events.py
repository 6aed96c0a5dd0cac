"""`runner events`: the transitions the stream still holds, and (following) those
written after, read from Redis with the client's connection: no web server needed.

What the stream holds is the last `[events] keep` (2 minutes by default): older
history is in PostgreSQL (`runner show`, `runner jobs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from runner.client.client import Client
from runner.events.feed import Feed
from runner.events.filters import TransitionFilter
from runner.events.transition import Transition

FOLLOW_BLOCK_MS = 5_000  # a following read waits this long in Redis, then again
CATCH_UP_BLOCK_MS = 100  # catching up, entries are there: a read waits only if trimmed


async def stream_transitions(
    client: Client, wanted: TransitionFilter, follow: bool
) -> AsyncIterator[list[Transition]]:
    """Batches of the transitions `wanted` keeps, oldest first, from the stream's first
    kept entry: up to its last entry at the start, or, when `follow`, for ever (the
    reads block in Redis until something is written: no polling)."""
    feed = Feed(client.store, wanted, block_ms=FOLLOW_BLOCK_MS, every_queue=True)
    last = await feed.start_at_first()
    while not feed.caught_up(last):
        before = dict(feed.last)
        batch = await feed.next_batch(CATCH_UP_BLOCK_MS)
        if batch:
            yield batch
        elif feed.last == before:  # the rest was trimmed meanwhile
            break
    while follow:
        batch = await feed.next_batch()
        if batch:
            yield batch
