"""What every daemon's sources did, added up in runner's Redis for `runner status`.

One hash, {prefix}:sources: per source, counters of messages accepted as new jobs,
redelivered messages whose job already existed, and messages dead-lettered, and
while a source is held back by the backlog, a note of that (when, the backlog, the
bound), refreshed as long as it lasts. A note older than HELD_FRESH_MS is stale (its
daemon died or resumed without a word) and reads as not held. Anyone who can write
to Redis can write here: values read back are checked, a bad one reads as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from runner.store.failures import on_redis
from runner.store.redis.store import RedisStore

COUNTS = ("accepted", "duplicates", "dead_lettered")
HELD_FRESH_MS = 10_000


def _key(store: RedisStore) -> str:
    return store.keys.sources


@on_redis
async def count_source(store: RedisStore, name: str, **counts: int) -> None:
    """Add this batch's figures (accepted=, duplicates=, dead_lettered=)."""
    added = {kind: n for kind, n in counts.items() if n}
    if not added:
        return
    async with store.redis.pipeline(transaction=False) as pipe:
        for kind, n in added.items():
            pipe.hincrby(_key(store), f"{name}:{kind}", n)
        await pipe.execute()


@on_redis
async def note_held(
    store: RedisStore, name: str, now_ms: int, backlog: int | None, bound: int | None
) -> None:
    """The source is held back now (backlog over bound), or with `backlog` None, no more."""
    if backlog is None:
        await store.redis.hdel(_key(store), f"{name}:held")
        return
    note = orjson.dumps({"at": now_ms, "backlog": backlog, "bound": bound}).decode()
    await store.redis.hset(_key(store), f"{name}:held", note)


def _whole(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _held(text: Any, now_ms: int) -> dict[str, Any] | None:
    try:
        note = orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(note, dict) or now_ms - _whole(note.get("at")) > HELD_FRESH_MS:
        return None
    return {"backlog": _whole(note.get("backlog")), "bound": _whole(note.get("bound"))}


@on_redis
async def read_source_figures(
    store: RedisStore, names: Sequence[str], now_ms: int
) -> dict[str, dict[str, Any]]:
    """Per source: its counters and whether it is held back (with the backlog then)."""
    if not names:
        return {}
    fields = [f"{name}:{kind}" for name in names for kind in (*COUNTS, "held")]
    values = dict(zip(fields, await store.redis.hmget(_key(store), fields), strict=True))
    out = {}
    for name in names:
        held = _held(values[f"{name}:held"], now_ms)
        out[name] = {
            **{kind: _whole(values[f"{name}:{kind}"]) for kind in COUNTS},
            "held_back": held is not None,
            "held": held,
        }
    return out
