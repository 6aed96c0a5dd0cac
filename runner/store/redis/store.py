"""Live job state in Redis, changed only through the Lua scripts.

Each verb is one round trip (one EVALSHA, or one pipeline), whatever the batch
size: claim, finish and renew are batched by their callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.jobs import (
    EnqueueResult,
    JobRecord,
    NewJob,
)
from runner.limits.bounds import FULL_REPLY, UNKNOWN_REPLY, refusal, unknown_dependency
from runner.limits.unique import HOLDING_ARGV
from runner.states import DEPENDENCY_ARGV, ENDED, GOING, RETIRED_ARGV, State, states_argv
from runner.store.failures import on_redis
from runner.store.job_rows import enqueue_row
from runner.store.redis.caps import CapStore, hash_counts
from runner.store.redis.connect import is_cluster, own_connection
from runner.store.redis.fields import int_or_none, named, stored
from runner.store.redis.keys import DEFAULT_QUEUE, KINDS, LEVELS, Keys
from runner.store.redis.notify import SinkStore
from runner.store.redis.parking import ParkStore
from runner.store.redis.queues import QueueStore
from runner.store.redis.replicas import not_replicated, note_behind, run_replicated
from runner.store.redis.requests import RequestStore
from runner.store.redis.retired import RetiredStore
from runner.store.redis.runs import RunStore
from runner.store.redis.scripts import Scripts, check_scripts
from runner.store.redis.status import StatusStore
from runner.store.redis.stream import EventStream
from runner.store.redis.thread_claims import ThreadClaims
from runner.store.redis.upgrade import upgrade_job_hashes
from runner.store.redis.wakeups import listen, publish_command

_CORE_FIELDS = {
    "id",
    "task",
    "kind",
    "state",
    "attempt",
    "max_attempts",
    "seq",
    "args",
    "kwargs",
    "due_at",
    "created_at",
    "updated_at",
    "started_at",
    "owner",
    "result",
    "error",
    "chosen_id",
    "revived",
    "priority",
}


def _json(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


class RedisStore(
    RunStore, EventStream, RequestStore, ParkStore, RetiredStore, StatusStore, QueueStore,
    CapStore,
):  # fmt: skip
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        keep_finished_ms: int = 0,
        wait_replicas: int = 0,
        scripts: Scripts | None = None,
    ) -> None:
        """`wait_replicas`: enqueues and outcomes return once this many replicas hold
        them (see replicas.py); 0, Redis's own default: once the primary has them.
        The store is one queue's (`keys.queue`); queue() gives the others'."""
        self.redis = redis
        self.keys = keys
        self.keep_finished_ms = keep_finished_ms
        self.wait_replicas = wait_replicas
        self.scripts = scripts or Scripts.register(redis)
        self.publish = publish_command(redis)
        self._views: dict[str, RedisStore] = {keys.queue: self}
        self._registered: set[str] = set()
        self._names: tuple[float, list[str]] | None = None

    def thread_claims(self, url: str, cluster: bool) -> ThreadClaims:
        """Claims from threads (an io thread's own next job), on a blocking client of
        the same server, with this store's keys."""
        return ThreadClaims(url, cluster, self.keys)

    def queue(self, name: str) -> RedisStore:
        """The store of queue `name`: the same connection, that queue's keys."""
        view = self._views.get(name)
        if view is None:
            view = RedisStore(self.redis, self.keys.of_queue(name), self.keep_finished_ms,
                              self.wait_replicas, self.scripts)  # fmt: skip
            view._views = self._views
            view._registered = self._registered
            self._views[name] = view
        return view

    @property
    def queue_name(self) -> str:
        return self.keys.queue

    @property
    def on_cluster(self) -> bool:
        """Whether it is a Redis Cluster's: each queue's slot may be on another node."""
        return is_cluster(self.redis)

    @on_redis
    async def ping(self) -> None:
        if is_cluster(self.redis):  # PING would ask every node: one down is no matter
            await self.redis.exists(self.keys.paused)  # the node serving the prefix answers
        else:
            await self.redis.ping()

    async def check_scripts(self) -> None:
        """Load every Lua script now: a syntax error fails at start (a ConfigError)."""
        await check_scripts(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()

    def on_own_connection(self) -> RedisStore:
        """This store on a Redis connection of its own (close it when done): for a
        reader that blocks in Redis (a live feed), so that it never takes one of
        the connections the shared pool keeps for everything else."""
        return RedisStore(
            own_connection(self.redis), self.keys, self.keep_finished_ms, self.wait_replicas,
            self.scripts,
        )  # fmt: skip

    def sink(self, name: str) -> SinkStore:
        """The verbs of webhook sink `name` (see notify.py), on this connection."""
        return SinkStore(self.redis, self.keys, self.scripts, name)

    async def upgrade_hashes(self) -> int:
        """Rename the fields of job hashes an older runner wrote (see upgrade.py)."""
        return await upgrade_job_hashes(self.redis, self.keys, self.scripts)

    def set_aside_keys(self) -> dict[str, str]:
        """Where an operator finds what was set aside: malformed jobs, stream entries."""
        return {"jobs_key": self.keys.dead, "events_key": self.keys.dead_events}

    async def enqueue(self, job: NewJob, origin: str, now_ms: int) -> EnqueueResult:
        return (await self.enqueue_many([job], origin, now_ms))[0]

    @on_redis
    async def enqueue_many(
        self,
        jobs: Sequence[NewJob],
        origin: str,
        now_ms: int,
        recorded: Mapping[str, str] | None = None,
        recorded_results: Mapping[str, str] | None = None,
    ) -> list[EnqueueResult]:
        """One script call a queue for the batch: one round trip and one stream entry
        each (the queues' calls run at once). `recorded` and `recorded_results`: the
        state and result (JSON text) PostgreSQL recorded of dependencies Redis forgot
        (enqueue.lua)."""
        queues = {job.queue for job in jobs}
        forgotten = recorded, recorded_results
        if queues <= {self.keys.queue}:
            return await self._enqueue_here(jobs, origin, now_ms, *forgotten)
        await self.register_queues(queues)
        by_queue = {q: [job for job in jobs if job.queue == q] for q in queues}
        replies = await asyncio.gather(
            *(
                self.queue(q)._enqueue_here(part, origin, now_ms, *forgotten)
                for q, part in by_queue.items()
            )
        )
        results = {
            id(job): result
            for part, got in zip(by_queue.values(), replies, strict=True)
            for job, result in zip(part, got, strict=True)
        }
        return [results[id(job)] for job in jobs]

    async def _enqueue_here(
        self,
        jobs: Sequence[NewJob],
        origin: str,
        now_ms: int,
        recorded: Mapping[str, str] | None = None,
        results: Mapping[str, str] | None = None,
    ) -> list[EnqueueResult]:
        if not jobs:
            return []
        if self.keys.queue != DEFAULT_QUEUE:
            await self.register_queues([self.keys.queue])
        packed = orjson.dumps([enqueue_row(job) for job in jobs]).decode()
        keys = self.keys.enqueue_for({(job.kind, job.priority) for job in jobs if job.priority})
        forgotten = [orjson.dumps(recorded or {}).decode(), orjson.dumps(results or {}).decode()]
        args: list[str | int] = [now_ms, State.SCHEDULED, origin, self.keys.wake_channel, packed,
                states_argv(GOING), RETIRED_ARGV, self.publish, HOLDING_ARGV, DEPENDENCY_ARGV,
                *forgotten]  # fmt: skip
        if self.wait_replicas:
            replies, acked = await run_replicated(
                self.redis, self.scripts.enqueue, keys, args, self.wait_replicas
            )
            if acked < self.wait_replicas:
                note_behind("enqueue", self.wait_replicas, acked)
                raise not_replicated([job.id for job in jobs], self.wait_replicas, acked)
        else:
            replies = await self.scripts.enqueue(keys=keys, args=args)
        return [_enqueued(job, reply) for job, reply in zip(jobs, replies, strict=True)]

    @on_redis
    async def forget_recorded(self, jobs: Sequence[tuple[str, int]], now_ms: int) -> int:
        """Give finished jobs that Postgres now holds (id, seq) their expiry; until
        then Redis keeps them, so an id is never free before it has a history. Those
        whose caller chose the id are retired (see runner/daemon/retired_ids.py)."""
        if not jobs or self.keep_finished_ms <= 0:
            return 0
        forgotten = await self.scripts.forget(
            keys=[self.keys.job_prefix, self.keys.dead, self.keys.retired],
            args=[
                self.keep_finished_ms,
                states_argv(ENDED),
                orjson.dumps(jobs).decode(),
                now_ms,
                RETIRED_ARGV,
            ],
        )
        return int(forgotten)

    @on_redis
    async def cron_baseline(self, name: str, now_ms: int) -> int:
        """The schedule's last handled tick (ms); set to `now_ms` the first time it is seen,
        so a new schedule does not fire ticks from before it existed."""
        await self.redis.hsetnx(self.keys.cron_state, f"{name}:tick", now_ms)
        value = await self.redis.hget(self.keys.cron_state, f"{name}:tick")
        return int_or_none(value) or now_ms

    @on_redis
    async def cron_state(self) -> dict[str, str]:
        state: dict[str, str] = await self.redis.hgetall(self.keys.cron_state)  # type: ignore[assignment]  # decode_responses=True
        return state

    @on_redis
    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job as Redis holds it, in whichever queue it is."""
        queue = (await self.route([job_id])).popitem()[0]
        return await self.queue(queue)._get_here(job_id)

    async def _get_here(self, job_id: str) -> JobRecord | None:
        found: dict[str, str] = await self.redis.hgetall(self.keys.job(job_id))  # type: ignore[assignment]  # decode_responses=True
        if not found:
            return None
        raw = named(found)
        return JobRecord(
            id=raw.get("id", job_id),
            task=raw.get("task", ""),
            state=raw.get("state", ""),
            attempt=int_or_none(raw.get("attempt")) or 0,
            max_attempts=int_or_none(raw.get("max_attempts")) or 1,  # shown as is, never trusted
            due_at_ms=int_or_none(raw.get("due_at")),
            args=_json(raw.get("args")),
            kwargs=_json(raw.get("kwargs")),
            result=_json(raw.get("result")),
            error=raw.get("error"),
            created_at_ms=int_or_none(raw.get("created_at")),
            updated_at_ms=int_or_none(raw.get("updated_at") or raw.get("created_at")),
            owner=raw.get("owner"),
            seq=int_or_none(raw.get("seq")) or 0,
            extra={k: v for k, v in raw.items() if k not in _CORE_FIELDS},
            queue=self.keys.queue,
            priority=int_or_none(raw.get("priority")) or 0,
        )

    @on_redis
    async def job_exists(self, job_id: str) -> bool:
        return bool(await self.locate([job_id]))

    @on_redis
    async def job_states(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The live state of each of these jobs that Redis holds."""
        return await self._field_of_jobs(job_ids, "state")

    @on_redis
    async def job_tasks(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The task of each of these jobs that Redis still holds."""
        return {i: t for i, t in (await self._field_of_jobs(job_ids, "task")).items() if t}

    @on_redis
    async def job_fields(
        self, job_ids: Sequence[str], names: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """These fields (named in full) of each of these jobs, in one round trip a queue;
        a value that is not a string is left out, and a job with none of them (Redis
        does not hold it, or a key of another type has its name)."""
        found: dict[str, dict[str, str]] = {}
        fields = [stored(name) for name in names]
        for queue, ids in (await self.route(job_ids)).items():
            keys = self.keys.of_queue(queue)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(keys.job(job_id), fields)
                replies = await pipe.execute(raise_on_error=False)
            for job_id, got in zip(ids, replies, strict=True):
                values = got if isinstance(got, list) else []
                have = {n: v for n, v in zip(names, values, strict=False) if isinstance(v, str)}
                if have:
                    found[job_id] = have
        return found

    @on_redis
    async def workflow_members(self, workflow_id: str) -> set[str]:
        """The ids of a workflow's jobs Redis lists, over every queue (see
        lua/enqueue.lua: a list kept a while after its last enqueue)."""
        names = await self.queue_names()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.smembers(self.keys.of_queue(name).workflow(workflow_id))
            replies = await pipe.execute(raise_on_error=False)
        return {i for r in replies if isinstance(r, set) for i in r if isinstance(i, str)}

    async def _field_of_jobs(self, job_ids: Sequence[str], name: str) -> dict[str, str]:
        """One field of each job hash (job_fields)."""
        return {i: f[name] for i, f in (await self.job_fields(job_ids, [name])).items()}

    @on_redis
    async def due_counts(self, now_ms: int) -> dict[str, int]:
        """Jobs due by now, per kind, over every queue (with those waiting for their
        key's turn, see hash_counts in caps.py)."""
        names = await self.queue_names()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                for kind in KINDS:
                    for level in (0, *LEVELS):
                        pipe.zcount(self.keys.of_queue(name).due(kind, level), "-inf", now_ms)
                pipe.hgetall(self.keys.of_queue(name).fair_waiting)
            counts = iter(await pipe.execute(raise_on_error=False))
        totals = dict.fromkeys(KINDS, 0)
        for _ in names:
            for kind in KINDS:
                totals[kind] += sum(next(counts) for _ in range(1 + len(LEVELS)))
            for kind, waiting in hash_counts(next(counts)).items():
                if kind in totals:
                    totals[kind] += waiting
        return totals

    @on_redis
    async def outstanding(self) -> int:
        """Whether jobs wait (any due time) or run in any queue: 0 means no work is
        left, anything else that some is (a drain asks this every few milliseconds:
        the sets of priorities 1-9 and the fairness groups' turns are counted by one
        EXISTS a queue)."""
        names = await self.queue_names(fresh=True)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                keys = self.keys.of_queue(name)
                for key in (*keys.due_all, keys.leases):
                    pipe.zcard(key)
                pipe.exists(*keys.due_levels, *keys.fair_turns)
            counts = await pipe.execute()
        return int(sum(counts))

    # Wake-ups: "a job is due at T", published by the scripts to every daemon.

    @on_redis
    async def listen_wakeups(
        self,
        on_due: Callable[[int | None], None],
        on_cancel: Callable[[str], None] | None = None,
    ) -> None:
        """Call `on_due(ms)` for each wake-up message and `on_cancel(job_id)` for each
        running job cancelled by request, until the connection fails (see wakeups.py)."""
        await listen(self.redis, self.keys, on_due, on_cancel)


def _enqueued(job: NewJob, reply: str) -> EnqueueResult:
    """A reply of enqueue.lua: the state the job was created in; "=<state>" if its id
    existed; "=<state> <id>" if a unique job of that id holds its unique key;
    "!full <waiting> <bound>" if its task's bound refused it."""
    if reply.startswith(FULL_REPLY):
        return refusal(job.task, job.queue, job.id, reply)
    if reply.startswith(UNKNOWN_REPLY):
        return unknown_dependency(job.id, reply[len(UNKNOWN_REPLY) :])
    if not reply.startswith("="):
        return EnqueueResult(job.id, True, reply)
    state, _, holder = reply[1:].partition(" ")
    return EnqueueResult(holder or job.id, False, state)
