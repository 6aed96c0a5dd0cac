"""Live job state in Redis, changed only through the Lua scripts.

Each verb is one round trip (one EVALSHA, or one pipeline), whatever the batch
size: claim, finish and renew are batched by their callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.jobs import (
    ClaimedJob,
    ClaimResult,
    EnqueueResult,
    JobRecord,
    NewJob,
    Outcome,
    ReapedJob,
)
from runner.states import ENDED, GOING, RETIRED_ARGV, TRANSITIONS, State, states_argv, transition
from runner.store.failures import on_redis
from runner.store.job_rows import enqueue_row
from runner.store.redis.connect import is_cluster, own_connection
from runner.store.redis.fields import named, stored
from runner.store.redis.keys import ALL_TASKS, DEFAULT_QUEUE, KINDS, LEVELS, Keys
from runner.store.redis.notify import SinkStore
from runner.store.redis.one_trip import ScriptCall, run_calls
from runner.store.redis.parking import ParkStore
from runner.store.redis.queues import QueueStore
from runner.store.redis.replicas import not_replicated, note_behind, run_replicated
from runner.store.redis.requests import RequestStore
from runner.store.redis.retired import RetiredStore
from runner.store.redis.scripts import Scripts, check_scripts
from runner.store.redis.status import StatusStore
from runner.store.redis.stream import EventStream
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
PRIORITY_AGING_MS = 1000  # [daemon] priority_aging's default (see lua/claim.lua)
_CLAIM = transition("claim")
_SUCCEED = transition("succeed")  # the sources of every outcome: running


def _int(value: str | bytes | None) -> int | None:
    """An integer field; None when missing or not a number (the hash is untrusted)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _target(action: str) -> str:
    target = TRANSITIONS[action].target
    assert target is not None, f"{action} changes a job's state"
    return target


def _seconds(value: str | None) -> float | None:
    """A positive finite number of seconds, or None (missing, empty, or not one)."""
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


def _json(value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


class RedisStore(EventStream, RequestStore, ParkStore, RetiredStore, StatusStore, QueueStore):
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
        self, jobs: Sequence[NewJob], origin: str, now_ms: int
    ) -> list[EnqueueResult]:
        """One script call a queue for the batch: one round trip and one stream entry
        each (the queues' calls run at once)."""
        queues = {job.queue for job in jobs}
        if queues <= {self.keys.queue}:
            return await self._enqueue_here(jobs, origin, now_ms)
        await self.register_queues(queues)
        by_queue = {q: [job for job in jobs if job.queue == q] for q in queues}
        replies = await asyncio.gather(
            *(self.queue(q)._enqueue_here(part, origin, now_ms) for q, part in by_queue.items())
        )
        results = {r.id: r for part in replies for r in part}
        return [results[job.id] for job in jobs]

    async def _enqueue_here(
        self, jobs: Sequence[NewJob], origin: str, now_ms: int
    ) -> list[EnqueueResult]:
        if not jobs:
            return []
        if self.keys.queue != DEFAULT_QUEUE:
            await self.register_queues([self.keys.queue])
        packed = orjson.dumps([enqueue_row(job) for job in jobs]).decode()
        keys = self.keys.enqueue_for({(job.kind, job.priority) for job in jobs if job.priority})
        args: list[str | int] = [now_ms, State.SCHEDULED, origin, self.keys.wake_channel, packed,
                states_argv(GOING), RETIRED_ARGV, self.publish]  # fmt: skip
        if self.wait_replicas:
            replies, acked = await run_replicated(
                self.redis, self.scripts.enqueue, keys, args, self.wait_replicas
            )
            if acked < self.wait_replicas:
                note_behind("enqueue", self.wait_replicas, acked)
                raise not_replicated([job.id for job in jobs], self.wait_replicas, acked)
        else:
            replies = await self.scripts.enqueue(keys=keys, args=args)
        return [
            EnqueueResult(job.id, not reply.startswith("="), reply.lstrip("="))
            for job, reply in zip(jobs, replies, strict=True)
        ]

    @on_redis
    async def claim_due(
        self,
        now_ms: int,
        limits: dict[str, int],
        daemon: str,
        lease_until_ms: int,
        aging_ms: int = PRIORITY_AGING_MS,
    ) -> ClaimResult:
        """Claim this queue's due jobs, at most `limits` per kind, higher priorities
        first (aged by `aging_ms` a level, see lua/claim.lua)."""
        call = self._claim_call(now_ms, limits, daemon, lease_until_ms, aging_ms)
        return self._claimed(await call.script(keys=call.keys, args=call.args))

    @on_redis
    async def claim_queues(
        self,
        asks: Mapping[str, dict[str, int]],
        now_ms: int,
        daemon: str,
        lease_until_ms: int,
        aging_ms: int = PRIORITY_AGING_MS,
    ) -> dict[str, ClaimResult]:
        """claim_due in each of these queues (queue -> limits), in one round trip."""
        if not asks:
            return {}
        calls = [
            self.queue(q)._claim_call(now_ms, limits, daemon, lease_until_ms, aging_ms)
            for q, limits in asks.items()
        ]
        replies = await run_calls(self.redis, calls)
        return {q: self.queue(q)._claimed(r) for q, r in zip(asks, replies, strict=True)}

    def _claim_call(
        self, now_ms: int, limits: dict[str, int], daemon: str, lease_until_ms: int,
        aging_ms: int,
    ) -> ScriptCall:  # fmt: skip
        limit = [limits.get(kind, 0) for kind in KINDS]
        args = [now_ms, daemon, lease_until_ms, _CLAIM.sources_argv, _target("claim"), *limit,
                State.FAILED, ALL_TASKS, aging_ms]  # fmt: skip
        return ScriptCall(self.scripts.claim, self.keys.claim, args)

    def _claimed(self, reply: Any) -> ClaimResult:
        flat, nexts, aside = reply
        jobs = [
            ClaimedJob(
                id=flat[i],
                task=flat[i + 1],
                kind=flat[i + 2],
                attempt=int(flat[i + 3]),
                claim=int(flat[i + 9]),
                max_attempts=int(flat[i + 4]),
                args_json=flat[i + 5],
                kwargs_json=flat[i + 6],
                due_at_ms=int(flat[i + 7]),
                timeout=_seconds(flat[i + 8]),
                queue=self.keys.queue,
            )
            for i in range(0, len(flat), 10)
        ]
        next_due = {kind: _int(value) for kind, value in zip(KINDS, nexts, strict=True)}
        set_aside = [(aside[i], aside[i + 1]) for i in range(0, len(aside), 2)]
        return ClaimResult(jobs, next_due, set_aside)

    @on_redis
    async def finish(self, now_ms: int, daemon: str, outcomes: Sequence[Outcome]) -> list[int]:
        """Record outcomes, each in its job's queue; per job 1 recorded, 0 fenced off
        (this daemon no longer owned it), 2 set aside (its hash turned malformed)."""
        queues = {o.queue for o in outcomes}
        if queues <= {self.keys.queue}:
            return await self._finish_here(now_ms, daemon, outcomes)
        by_queue = {q: [o for o in outcomes if o.queue == q] for q in sorted(queues)}
        if self.wait_replicas:  # each queue's WAIT goes with its own call
            parts = await asyncio.gather(
                *(self.queue(q)._finish_here(now_ms, daemon, part) for q, part in by_queue.items())
            )
        else:
            calls = [
                self.queue(q)._finish_call(now_ms, daemon, part) for q, part in by_queue.items()
            ]
            parts = [[int(r) for r in reply] for reply in await run_calls(self.redis, calls)]
        replies = {
            (o.job_id, o.claim): r
            for part, got in zip(by_queue.values(), parts, strict=True)
            for o, r in zip(part, got, strict=True)
        }
        return [replies[(o.job_id, o.claim)] for o in outcomes]

    async def _finish_here(
        self, now_ms: int, daemon: str, outcomes: Sequence[Outcome]
    ) -> list[int]:
        call = self._finish_call(now_ms, daemon, outcomes)
        if self.wait_replicas:  # an outcome that stands unconfirmed is only noted
            replies, acked = await run_replicated(
                self.redis, call.script, call.keys, call.args, self.wait_replicas
            )
            if acked < self.wait_replicas:
                note_behind("finish", self.wait_replicas, acked)
        else:
            replies = await call.script(keys=call.keys, args=call.args)
        return [int(r) for r in replies]

    def _finish_call(self, now_ms: int, daemon: str, outcomes: Sequence[Outcome]) -> ScriptCall:
        packed = orjson.dumps(
            [
                (
                    o.job_id, o.claim, _target(o.action), o.due_at_ms or 0,
                    o.result_json, o.error, o.detail_json, int(o.give_back),
                )
                for o in outcomes
            ]
        ).decode()  # fmt: skip
        args: list[str | int] = [now_ms, daemon, _SUCCEED.sources_argv, self.keys.wake_channel,
                                 packed, State.FAILED, self.publish]  # fmt: skip
        return ScriptCall(self.scripts.finish, self.keys.running_ends, args)

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
    async def renew_leases(
        self, daemon: str, lease_until_ms: int, jobs: Iterable[tuple[str, int]]
    ) -> list[tuple[str, str]]:
        """Extend the leases of runs named by (job id, claim); returns the jobs whose
        lease this daemon has lost, each with its state now ("" if gone)."""
        args: list[str | int] = [daemon, lease_until_ms, State.RUNNING]
        for job_id, claim in jobs:
            args += [job_id, claim]
        if len(args) == 3:
            return []
        flat: list[str] = await self.scripts.renew(
            keys=[self.keys.leases, self.keys.job_prefix], args=args
        )
        return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    @on_redis
    async def reap_expired(self, now_ms: int, reaper: str, limit: int = 500) -> list[ReapedJob]:
        retry = transition("lease_expired_retry")
        flat = await self.scripts.reap(
            keys=self.keys.running_ends,
            args=[
                now_ms,
                limit,
                reaper,
                retry.sources_argv,
                _target("lease_expired_retry"),
                _target("lease_expired_fail"),
                self.keys.wake_channel,
                self.publish,
            ],
        )
        return [
            ReapedJob(flat[i], flat[i + 1], int(flat[i + 2]), flat[i + 3], flat[i + 4])
            for i in range(0, len(flat), 5)
        ]

    @on_redis
    async def cron_baseline(self, name: str, now_ms: int) -> int:
        """The schedule's last handled tick (ms); set to `now_ms` the first time it is seen,
        so a new schedule does not fire ticks from before it existed."""
        await self.redis.hsetnx(self.keys.cron_state, f"{name}:tick", now_ms)
        value = await self.redis.hget(self.keys.cron_state, f"{name}:tick")
        return _int(value) or now_ms

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
            attempt=_int(raw.get("attempt")) or 0,
            max_attempts=_int(raw.get("max_attempts")) or 1,  # shown as is, never trusted
            due_at_ms=_int(raw.get("due_at")),
            args=_json(raw.get("args")),
            kwargs=_json(raw.get("kwargs")),
            result=_json(raw.get("result")),
            error=raw.get("error"),
            created_at_ms=_int(raw.get("created_at")),
            updated_at_ms=_int(raw.get("updated_at") or raw.get("created_at")),
            owner=raw.get("owner"),
            seq=_int(raw.get("seq")) or 0,
            extra={k: v for k, v in raw.items() if k not in _CORE_FIELDS},
            queue=self.keys.queue,
            priority=_int(raw.get("priority")) or 0,
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

    async def _field_of_jobs(self, job_ids: Sequence[str], name: str) -> dict[str, str]:
        """One field of each job hash, in one round trip a queue; a job Redis does not
        hold, or a value that is not a string (a key of another type), is left out."""
        found: dict[str, str] = {}
        for queue, ids in (await self.route(job_ids)).items():
            keys = self.keys.of_queue(queue)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hget(keys.job(job_id), stored(name))
                values = await pipe.execute(raise_on_error=False)
            found.update((i, v) for i, v in zip(ids, values, strict=True) if isinstance(v, str))
        return found

    @on_redis
    async def due_counts(self, now_ms: int) -> dict[str, int]:
        """Jobs due by now, per kind, over every queue."""
        names = await self.queue_names()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                for kind in KINDS:
                    for level in (0, *LEVELS):
                        pipe.zcount(self.keys.of_queue(name).due(kind, level), "-inf", now_ms)
            counts = iter(await pipe.execute())
        totals = dict.fromkeys(KINDS, 0)
        for _ in names:
            for kind in KINDS:
                totals[kind] += sum(next(counts) for _ in range(1 + len(LEVELS)))
        return totals

    @on_redis
    async def outstanding(self) -> int:
        """Whether jobs wait (any due time) or run in any queue: 0 means no work is
        left, anything else that some is (a drain asks this every few milliseconds:
        the sets of priorities 1-9 are counted by one EXISTS a queue)."""
        names = await self.queue_names(fresh=True)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                keys = self.keys.of_queue(name)
                for key in (*keys.due_all, keys.leases):
                    pipe.zcard(key)
                pipe.exists(*keys.due_levels)
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
