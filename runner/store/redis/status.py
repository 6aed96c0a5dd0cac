"""What `runner status` reads from Redis (two round trips), and what a daemon says of
itself beside its heartbeat.

Liveness is a daemon's score in {prefix}:daemons (its last heartbeat, ms); its note
of itself (host, pid, start, version) lies in {prefix}:daemon_info. Anyone who can
write to Redis can write to any of these keys, so every value read back is checked:
one that is not what runner writes is shown as unknown (None), never a crash.

Times are compared with the caller's clock: due scores come from the clocks of the
clients that enqueued, stream ids from the Redis server's, so a lag is as exact as
those clocks agree.
"""

from __future__ import annotations

import math
import os
import socket
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from redis.asyncio import Redis

from runner.jobs import rfc3339
from runner.store.failures import on_redis
from runner.store.redis import retention
from runner.store.redis.caps import hash_counts
from runner.store.redis.fields import stored
from runner.store.redis.keys import ALL_TASKS, KINDS, PRIORITIES, Keys

UNKNOWN_OWNER = "(unknown)"  # running jobs whose hash names no owner
_MAX_TEXT = 200  # a longer host or version read back is cut: it was not a daemon's


@dataclass(frozen=True)
class DaemonInfo:
    """What a daemon publishes of itself, for operators telling daemons apart."""

    host: str
    pid: int
    started_ms: int
    version: str

    @classmethod
    def of_this_process(cls, started_ms: int, version: str) -> DaemonInfo:
        return cls(socket.gethostname(), os.getpid(), started_ms, version)

    def to_json(self) -> str:
        note = {"host": self.host, "pid": self.pid, "started": self.started_ms}
        return orjson.dumps({**note, "version": self.version}).decode()


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value[:_MAX_TEXT] if isinstance(value, str) else None


def _object(text: Any) -> dict[str, Any]:
    """A JSON object read back from Redis; {} for anything else."""
    if not isinstance(text, str):
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def read_daemon_info(text: Any) -> dict[str, Any]:
    """host, pid, started (RFC 3339) and version, each None when missing or malformed."""
    note = _object(text)
    started = _whole(note.get("started"))
    return {
        "host": _text(note.get("host")),
        "pid": _whole(note.get("pid")),
        "started": None if started is None else rfc3339(started),
        "version": _text(note.get("version")),
    }


def read_daemon_pools(text: Any, now_ms: int) -> dict[str, dict[str, Any]]:
    """Per kind a daemon published: slots in use, free, held by jobs past their timeout,
    and the oldest of those (job id, since, age); {} when missing or malformed."""
    pools = {}
    for kind, pool in _object(text).items():
        if kind not in KINDS or not isinstance(pool, dict):
            continue
        oldest = pool.get("oldest_held")
        since = _whole(oldest.get("since")) if isinstance(oldest, dict) else None
        pools[kind] = {
            "in_use": _whole(pool.get("in_use")),
            "free": _whole(pool.get("free")),
            "held_by_timed_out": _whole(pool.get("held")),
            "oldest_held": None if since is None or not isinstance(oldest, dict) else {
                "job_id": _text(oldest.get("job_id")),
                "since": rfc3339(since),
                "age_ms": max(now_ms - since, 0),
            },
        }  # fmt: skip
    return pools


def read_pause_note(text: Any) -> dict[str, Any]:
    """Who paused a task (the requester's origin) and when (RFC 3339), or None each."""
    note = _object(text)
    at = _whole(note.get("at"))
    return {"by": _text(note.get("by")), "at": None if at is None else rfc3339(at)}


class _Live(NamedTuple):
    """The first round trip: the document's simple counts, and what the second one
    reads more about."""

    counts: dict[str, Any]
    running_ids: list[tuple[str, str]]  # (queue, job id)
    daemons: list[tuple[str, int | None]]  # live ones, by id: (id, last heartbeat)
    paused: dict[str, str]  # task -> its note, as stored


async def read_overview(
    redis: Redis, keys: Keys, queues: list[str], now_ms: int, alive_since_ms: int
) -> dict[str, Any]:
    """The Redis part of the status document (see runner.client.status): the sums over
    the queues, and each queue's own figures under "queues"."""
    live = await _first_round(redis, keys, queues, now_ms, alive_since_ms)
    info, pools, held, owners = await _second_round(redis, keys, live)
    tasks = sorted((task, note) for task, note in live.paused.items() if task != ALL_TASKS)
    maintenance = live.paused.get(ALL_TASKS)
    return {
        **live.counts,
        "running": len(live.running_ids),
        "daemons": [daemon for daemon, _ in live.daemons],
        "running_by_daemon": _running_by_daemon(owners),
        "daemon_details": _daemon_details(live.daemons, info, pools, now_ms),
        "paused_tasks": {
            task: {**read_pause_note(note), "held": count}
            for (task, note), count in zip(tasks, held, strict=True)
        },
        "maintenance": maintenance is not None,
        "maintenance_since": None if maintenance is None else read_pause_note(maintenance),
    }


async def read_queue(redis: Redis, keys: Keys, now_ms: int) -> dict[str, Any]:
    """One queue's figures: due and waiting jobs per kind (every priority), how late
    its earliest due job is, its running jobs, set-aside jobs and unrecorded entries."""
    sets = {kind: [keys.due(kind, level) for level in PRIORITIES] for kind in KINDS}
    async with redis.pipeline(transaction=False) as pipe:
        for kind in KINDS:
            for key in sets[kind]:
                pipe.zcount(key, "-inf", now_ms)
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
        pipe.zrange(keys.leases, 0, -1)
        pipe.zcard(keys.dead)
        pipe.hgetall(keys.fair_waiting)
        pipe.hgetall(keys.blocked_counts)
        replies = await pipe.execute(raise_on_error=False)
    blocked = hash_counts(replies.pop())
    fair = hash_counts(replies.pop())
    unrecorded = await retention.backlog(redis, keys.events, keys.recorder_group)
    per_kind = 3 * len(PRIORITIES)
    due, waiting, firsts = {}, {}, []
    for n, kind in enumerate(KINDS):
        part = replies[n * per_kind : (n + 1) * per_kind]
        due[kind] = sum(part[0::3]) + fair.get(kind, 0)
        waiting[kind] = sum(part[1::3]) + fair.get(kind, 0)
        firsts += part[2::3]
    running_ids, dead = replies[len(KINDS) * per_kind :]
    return {
        "due": due,
        "waiting": waiting,
        "blocked": blocked,
        "running": len(running_ids),
        "oldest_due_lag_ms": _oldest_due_lag(firsts, now_ms),
        "unrecorded_entries": unrecorded.entries,
        "set_aside_jobs": dead,
        "running_ids": running_ids,
        "recorder_pending": unrecorded.pending,
        "unrecorded_oldest_age_ms": _entry_age(unrecorded.oldest_id, now_ms),
    }


def _largest(values: list[int | None]) -> int | None:
    return max((v for v in values if v is not None), default=None)


async def _first_round(
    redis: Redis, keys: Keys, queues: list[str], now_ms: int, alive_since_ms: int
) -> _Live:
    figures = {q: await read_queue(redis, keys.of_queue(q), now_ms) for q in queues}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(keys.daemons, alive_since_ms, "+inf", withscores=True)
        pipe.xlen(keys.dead_events)
        pipe.hgetall(keys.control.paused)
        daemons, dead_events, paused = await pipe.execute()
    every = list(figures.values())
    counts = {
        "due": {k: sum(f["due"][k] for f in every) for k in KINDS},
        "waiting": {k: sum(f["waiting"][k] for f in every) for k in KINDS},
        "blocked": dict(sorted(sum((Counter(f["blocked"]) for f in every), Counter()).items())),
        "unrecorded_entries": sum(f["unrecorded_entries"] for f in every),
        "set_aside": {"jobs": sum(f["set_aside_jobs"] for f in every), "events": dead_events},
        "oldest_due_lag_ms": _largest([f["oldest_due_lag_ms"] for f in every]),
        "recorder_pending": sum(f["recorder_pending"] for f in every),
        "unrecorded_oldest_age_ms": _largest([f["unrecorded_oldest_age_ms"] for f in every]),
        "queues": {
            q: {k: v for k, v in f.items() if k not in ("running_ids", "recorder_pending")}
            for q, f in figures.items()
        },
    }
    running = [(q, job_id) for q, f in figures.items() for job_id in f["running_ids"]]
    beats = sorted((daemon, _score_ms(score)) for daemon, score in daemons)
    return _Live(counts, running, beats, paused)


async def _second_round(
    redis: Redis, keys: Keys, live: _Live
) -> tuple[list[Any], list[Any], list[int | None], list[Any]]:
    """Daemons' notes and pools, held counts of paused tasks, owners of running jobs;
    a reply that is an error (a key of the wrong type) reads as unknown."""
    daemon_ids = [daemon for daemon, _ in live.daemons]
    paused = sorted(task for task in live.paused if task != ALL_TASKS)
    async with redis.pipeline(transaction=False) as pipe:
        if daemon_ids:
            pipe.hmget(keys.daemon_info, daemon_ids)
            pipe.hmget(keys.daemon_pools, daemon_ids)
        queues = list(live.counts["queues"])
        for task in paused:
            for queue in queues:
                pipe.zcard(keys.of_queue(queue).held(task))
        for queue, job_id in live.running_ids:
            pipe.hget(keys.of_queue(queue).job(job_id), stored("owner"))
        replies = await pipe.execute(raise_on_error=False)
    info, pools = (replies.pop(0), replies.pop(0)) if daemon_ids else ([], [])
    info = info if isinstance(info, list) else [None] * len(daemon_ids)
    pools = pools if isinstance(pools, list) else [None] * len(daemon_ids)
    n = len(queues)
    counts = [_whole(count) for count in replies[: len(paused) * n]]
    held = [_sum_known(counts[i * n : (i + 1) * n]) for i in range(len(paused))]
    return info, pools, held, replies[len(paused) * n :]


def _sum_known(counts: list[int | None]) -> int | None:
    known = [c for c in counts if c is not None]
    return sum(known) if known else None


def _score_ms(score: Any) -> int | None:
    """A sorted-set score as ms; None for one no clock gives (inf, nan)."""
    return int(score) if isinstance(score, float | int) and math.isfinite(score) else None


def _oldest_due_lag(firsts: list[Any], now_ms: int) -> int | None:
    """How long the earliest due job has waited past its due time; None if none is due."""
    scores = [_score_ms(pairs[0][1]) for pairs in firsts if pairs]
    earliest = min((score for score in scores if score is not None), default=None)
    return None if earliest is None or earliest > now_ms else now_ms - earliest


def _entry_age(entry_id: str | None, now_ms: int) -> int | None:
    """Age of a stream entry (its id is "<ms>-<n>"), None with no entry."""
    if entry_id is None:
        return None
    try:
        written = int(entry_id.split("-", 1)[0])
    except ValueError:
        return None
    return max(now_ms - written, 0)


def _running_by_daemon(owners: list[Any]) -> dict[str, int]:
    counts = Counter(o if isinstance(o, str) and o else UNKNOWN_OWNER for o in owners)
    return dict(sorted(counts.items()))


def _daemon_details(
    daemons: list[tuple[str, int | None]], info: list[Any], pools: list[Any], now_ms: int
) -> list[dict[str, Any]]:
    return [
        {
            "id": daemon,
            **read_daemon_info(note),
            "last_heartbeat": None if beat is None else rfc3339(beat),
            "heartbeat_age_ms": None if beat is None else max(now_ms - beat, 0),
            "pools": read_daemon_pools(kinds, now_ms),
        }
        for (daemon, beat), note, kinds in zip(daemons, info, pools, strict=True)
    ]


class StatusStore:
    """Daemons' presence (heartbeats, their notes and pools) and the status document's
    Redis part. A base of RedisStore."""

    redis: Redis
    keys: Keys

    if TYPE_CHECKING:

        async def queue_names(self, fresh: bool = False) -> list[str]: ...  # QueueStore's

    @on_redis
    async def heartbeat(
        self, daemon: str, now_ms: int, info: DaemonInfo | None = None, pools: str | None = None
    ) -> None:
        """Liveness is the daemon's score. Its note of itself (`info`) is written only
        where missing: once at start, and again after Redis lost its data; its pools
        (JSON) each time. The same round trip either way."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.daemons, {daemon: now_ms})
            if info is not None:
                pipe.hsetnx(self.keys.daemon_info, daemon, info.to_json())
            if pools is not None:
                pipe.hset(self.keys.daemon_pools, daemon, pools)
            await pipe.execute()

    @on_redis
    async def forget_daemon(self, daemon: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.daemons, daemon)
            pipe.hdel(self.keys.daemon_info, daemon)
            pipe.hdel(self.keys.daemon_pools, daemon)
            await pipe.execute()

    @on_redis
    async def overview(self, now_ms: int, alive_since_ms: int) -> dict[str, Any]:
        """What `runner status` shows from Redis, in two round trips (the second reads
        the notes of live daemons, held jobs of paused tasks, owners of running jobs)."""
        queues = await self.queue_names(fresh=True)
        return await read_overview(self.redis, self.keys, queues, now_ms, alive_since_ms)
