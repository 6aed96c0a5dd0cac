"""The Redis figures behind the daemon's gauges, in a few round trips of O(log n) reads.

Read every couple of seconds by the metrics service, never on a scrape: due jobs
per kind (ZCOUNT, and the count of jobs waiting for their key's turn), blocked jobs
per task (a hash the scripts keep), the earliest
due time per kind (the first member of each due set) and the unrecorded stream
entries (the recorders' consumer group's pending entries and lag). None of it
grows with the number of jobs Redis or Postgres holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runner.store.failures import on_redis
from runner.store.redis import retention
from runner.store.redis.caps import hash_counts
from runner.store.redis.keys import KINDS, PRIORITIES
from runner.store.redis.store import RedisStore


@dataclass(frozen=True)
class QueueGauges:
    due: dict[str, int]  # due now, per kind
    oldest_due_lag_ms: int  # how long the earliest due job has waited; 0 if none is due
    unrecorded_entries: int  # stream entries not yet committed to Postgres
    blocked: dict[str, int]  # jobs waiting for their dependencies, per task


def _score(pairs: Any) -> float | None:
    if not pairs:
        return None
    score = pairs[0][1]
    return float(score) if isinstance(score, int | float) and math.isfinite(score) else None


@on_redis
async def read_queue_gauges(store: RedisStore, now_ms: int) -> dict[str, QueueGauges]:
    """Each queue's gauges (a queue is one label value of each)."""
    return {name: await _read_one(store.queue(name), now_ms) for name in await store.queue_names()}


async def _read_one(store: RedisStore, now_ms: int) -> QueueGauges:
    keys = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for kind in KINDS:
            for level in PRIORITIES:
                pipe.zcount(keys.due(kind, level), "-inf", now_ms)
        for key in keys.due_every:
            pipe.zrange(key, 0, 0, withscores=True)
        pipe.hgetall(keys.fair_waiting)
        pipe.hgetall(keys.blocked_counts)
        replies = await pipe.execute(raise_on_error=False)
    blocked = hash_counts(replies.pop())
    fair = hash_counts(replies.pop())
    unrecorded = await retention.backlog(store.redis, keys.events, keys.recorder_group)
    n, levels = len(KINDS), len(PRIORITIES)
    counts = replies[: n * levels]
    earliest = min((s for s in map(_score, replies[n * levels :]) if s is not None), default=None)
    lag = 0 if earliest is None or earliest > now_ms else int(now_ms - earliest)
    return QueueGauges(
        due={
            kind: int(sum(counts[i * levels : (i + 1) * levels])) + fair.get(kind, 0)
            for i, kind in enumerate(KINDS)
        },
        oldest_due_lag_ms=lag,
        unrecorded_entries=unrecorded.entries,
        blocked=blocked,
    )
