"""Bad data written straight into Redis, as another program (or a bug) might.

Anyone who can write to Redis can leave a job hash with a field missing or not
a number, a key of another type under a job's name, members of the due and
lease sets pointing at such keys, and entries in the transition stream that
runner's scripts never wrote. Each planted job says which field its error
should name (None: it is not a hash, so only a dead-letter key can hold it).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.store.redis import fields as job_fields
from runner.store.redis.keys import Keys

_counter = itertools.count()


@dataclass(frozen=True)
class BadJob:
    id: str
    flaw: str  # what is wrong with it
    named: str | None  # what its error must name, or None: a dead-letter key only
    where: str  # the sorted set it was put in


@dataclass(frozen=True)
class BadEntry:
    id: str  # the stream entry id
    flaw: str
    writable: bool  # whether Postgres could take it once the bad part is replaced


def _job_hash(job_id: str, now_ms: int, state: str) -> dict[str, str]:
    return {
        "id": job_id, "task": "async_work", "kind": "async",
        "args": orjson.dumps([job_id, 1]).decode(), "kwargs": "{}",
        "due_at": str(now_ms), "state": state, "attempt": "0", "max_attempts": "4",
        "seq": "1", "created_at": str(now_ms), "updated_at": str(now_ms),
    }  # fmt: skip


# (flaw, field changes (None deletes the field), what the error must name)
HASH_FLAWS: tuple[tuple[str, dict[str, str | None], str], ...] = (
    ("attempt missing", {"attempt": None}, "attempt"),
    ("attempt not a number", {"attempt": "abc"}, "attempt"),
    ("attempt nan", {"attempt": "nan"}, "attempt"),
    ("seq missing", {"seq": None}, "seq"),
    ("seq not a number", {"seq": "x"}, "seq"),
    ("seq infinite", {"seq": "inf"}, "seq"),
    ("due_at not a number", {"due_at": "soon"}, "due_at"),
    ("max_attempts not a number", {"max_attempts": "many"}, "max_attempts"),
    ("max_attempts zero", {"max_attempts": "0"}, "max_attempts"),
    ("kind unknown", {"kind": "gpu"}, "kind"),
    ("task missing", {"task": None}, "task"),
    ("state missing", {"state": None}, "state"),
    ("task not declared", {"task": "no_such_task"}, "no_such_task"),
    ("args not JSON", {"args": "[1,"}, "JSON"),
    ("args not a list", {"args": '{"a": 1}'}, "array"),
)

# The reaper reads fewer fields than the claim: these are the ones it must check.
LEASE_FLAWS: tuple[tuple[str, dict[str, str | None], str], ...] = (
    ("attempt not a number", {"attempt": "x"}, "attempt"),
    ("max_attempts missing", {"max_attempts": None}, "max_attempts"),
    ("seq missing", {"seq": None}, "seq"),
    ("kind unknown", {"kind": "gpu"}, "kind"),
)


async def _plant_hash(
    redis: Redis, key: str, fields: dict[str, str], changes: dict[str, str | None]
) -> None:
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    await redis.hset(key, mapping={job_fields.stored(k): v for k, v in fields.items()})


async def plant_bad_jobs(redis: Redis, keys: Keys) -> list[BadJob]:
    """Malformed jobs in the async due set (due now) and, as if a dead daemon ran them,
    in the lease set with leases long expired."""
    now = int(time.time() * 1000)
    planted: list[BadJob] = []
    for flaw, changes, named in HASH_FLAWS:
        job_id = f"bad-{next(_counter)}"
        await _plant_hash(redis, keys.job(job_id), _job_hash(job_id, now, "scheduled"), changes)
        await redis.zadd(keys.due("async"), {job_id: now})
        planted.append(BadJob(job_id, flaw, named, keys.due("async")))
    for flaw, changes, named in LEASE_FLAWS:
        job_id = f"bad-{next(_counter)}"
        fields = {**_job_hash(job_id, now, "running"), "attempt": "1", "owner": "ghost:1:dead"}
        await _plant_hash(redis, keys.job(job_id), fields, changes)
        await redis.zadd(keys.leases, {job_id: now - 60_000})
        planted.append(BadJob(job_id, f"running, {flaw}", named, keys.leases))
    for where in (keys.due("io"), keys.leases):
        job_id = f"bad-{next(_counter)}"
        await redis.set(keys.job(job_id), "a string where a hash belongs")
        await redis.zadd(where, {job_id: now - 60_000})
        planted.append(BadJob(job_id, "a string key", None, where))
    job_id = f"bad-{next(_counter)}"
    await redis.rpush(keys.job(job_id), "a", "list")
    await redis.zadd(keys.due("cpu"), {job_id: now})
    planted.append(BadJob(job_id, "a list key", None, keys.due("cpu")))
    return planted


def _event(seq: object = 1, at: object = 0, detail: object = "{}") -> list[object]:
    return [f"bogus-{next(_counter)}", seq, "", "scheduled", at, "", 0, detail]


# (flaw, the entry's fields, whether Postgres can take it once a bad detail is replaced)
STREAM_FLAWS: tuple[tuple[str, dict[str, str], bool], ...] = (
    ("no e field", {"x": "1"}, False),
    ("e not JSON", {"e": "not json"}, False),
    ("e an object", {"e": '{"a": 1}'}, False),
    ("e an array of numbers", {"e": "[1, 2]"}, False),
    ("event too short", {"e": orjson.dumps([["bogus-short"]]).decode()}, False),
    ("seq not a number", {"e": orjson.dumps([_event(seq="one")]).decode()}, False),
    ("time not a number", {"e": orjson.dumps([_event(at="later")]).decode()}, False),
    ("detail not JSON", {"e": orjson.dumps([_event(detail="{oops")]).decode()}, True),
)


async def plant_bad_entries(redis: Redis, keys: Keys) -> list[BadEntry]:
    planted = []
    for flaw, fields, writable in STREAM_FLAWS:
        entry_id = await redis.xadd(keys.events, fields)  # type: ignore[arg-type]  # str values
        planted.append(BadEntry(str(entry_id), flaw, writable))
    return planted


async def dead_letters(redis: Redis, keys: Keys) -> tuple[set[str], set[str]]:
    """(job ids, stream entry ids) held by any key under `{prefix}:dead`, whatever its
    type: runner may keep set-aside jobs and entries in a set, a list, a hash or a
    stream."""
    jobs: set[str] = set()
    entries: set[str] = set()
    async for key in redis.scan_iter(match=f"{keys.base}:dead*", count=1000):
        kind = await redis.type(key)
        reply: Any = None
        if kind == "zset":
            reply = await redis.zrange(key, 0, -1)
        elif kind == "set":
            reply = await redis.smembers(key)
        elif kind == "list":
            reply = await redis.lrange(key, 0, -1)
        elif kind == "hash":
            reply = await redis.hkeys(key)
        elif kind == "stream":
            stream: Any = await redis.xrange(key)
            for _, fields in stream:
                entries.update(str(fields[n]) for n in ("entry_id", "id") if n in fields)
                jobs.update(str(fields[n]) for n in ("job_id", "id") if n in fields)
        jobs.update(str(member) for member in reply or ())
    return jobs, entries


async def where_bad_job_is(redis: Redis, keys: Keys, job: BadJob, dead: set[str]) -> str | None:
    """What is still wrong with how runner handled `job`, or None if it was handled:
    out of every due and lease set, and failed with the flaw named or set aside."""
    queued = [
        key for key in (*keys.due_all, keys.leases) if await redis.zscore(key, job.id) is not None
    ]
    if queued:
        return f"{job.id} ({job.flaw}) is still in {queued}"
    if job.id in dead:
        return None
    fields: Any = {}
    with contextlib.suppress(ResponseError):  # a key of another type, as planted
        fields = job_fields.named(await redis.hgetall(keys.job(job.id)))
    state, error = fields.get("state"), fields.get("error", "")
    if job.named is not None and state == "failed" and job.named in error:
        return None
    return f"{job.id} ({job.flaw}): not set aside, state {state!r}, error {error!r}"
