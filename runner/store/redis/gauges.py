"""The Redis figures behind the daemon's gauges, in a few round trips of O(log n) reads.

Read every couple of seconds by the metrics service, never on a scrape: due jobs
per kind (ZCOUNT), the earliest due time per kind (the first member of each due
set) and the unrecorded stream entries (the recorders' consumer group's pending
entries and lag). None of it grows with the number of jobs Redis or Postgres holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from runner.store.failures import on_redis
from runner.store.redis import retention
from runner.store.redis.keys import KINDS
from runner.store.redis.store import RedisStore


@dataclass(frozen=True)
class QueueGauges:
    due: dict[str, int]  # due now, per kind
    oldest_due_lag_ms: int  # how long the earliest due job has waited; 0 if none is due
    unrecorded_entries: int  # stream entries not yet committed to Postgres


def _score(pairs: Any) -> float | None:
    if not pairs:
        return None
    score = pairs[0][1]
    return float(score) if isinstance(score, int | float) and math.isfinite(score) else None


@on_redis
async def read_queue_gauges(store: RedisStore, now_ms: int) -> QueueGauges:
    keys = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for kind in KINDS:
            pipe.zcount(keys.due(kind), "-inf", now_ms)
        for kind in KINDS:
            pipe.zrange(keys.due(kind), 0, 0, withscores=True)
        replies = await pipe.execute()
    unrecorded = await retention.backlog(store.redis, keys.events, keys.recorder_group)
    n = len(KINDS)
    earliest = min((s for s in map(_score, replies[n : 2 * n]) if s is not None), default=None)
    lag = 0 if earliest is None or earliest > now_ms else int(now_ms - earliest)
    return QueueGauges(
        due={kind: int(count) for kind, count in zip(KINDS, replies[:n], strict=True)},
        oldest_due_lag_ms=lag,
        unrecorded_entries=unrecorded.entries,
    )
