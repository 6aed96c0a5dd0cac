"""A job's runs in Redis: claimed, renewed, finished, reaped. A base of RedisStore.

A claim takes a queue's due jobs in one script call, higher priorities first; a
batch of outcomes is one call a queue. Several queues' calls go in one round trip
(one_trip.py). Every call is fenced by owner and claim (see lua/finish.lua).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis

from runner.jobs import ClaimedJob, ClaimResult, Outcome, ReapedJob
from runner.states import DEPENDENCY_ARGV, TRANSITIONS, State, transition
from runner.store.failures import on_redis
from runner.store.redis.fields import float_or_none
from runner.store.redis.keys import ALL_TASKS, KINDS, Keys
from runner.store.redis.one_trip import ScriptCall, run_calls
from runner.store.redis.replicas import note_behind, run_replicated
from runner.store.redis.scripts import Scripts

PRIORITY_AGING_MS = 1000  # [daemon] priority_aging's default (see lua/claim.lua)
_CLAIM = transition("claim")
_SUCCEED = transition("succeed")  # the sources of every outcome: running


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


def claim_args(
    now_ms: int, limits: Mapping[str, int], daemon: str, lease_until_ms: int, *,
    aging_ms: int, horizon_ms: float | None = None,
) -> list[Any]:  # fmt: skip
    """claim.lua's ARGV: one place, for the loop's claims and an io thread's own."""
    limit = [limits.get(kind, 0) for kind in KINDS]
    horizon = "" if horizon_ms is None else repr(float(horizon_ms))  # every digit
    return [now_ms, daemon, lease_until_ms, _CLAIM.sources_argv, _target("claim"), *limit,
            State.FAILED, ALL_TASKS, aging_ms, horizon]  # fmt: skip


def claimed(reply: Any, queue: str) -> ClaimResult:
    """claim.lua's reply: the jobs claimed from `queue`, what is due next, what was set
    aside."""
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
            due_at_ms=float(flat[i + 7]),
            timeout=_seconds(flat[i + 8]),
            queue=queue,
        )
        for i in range(0, len(flat), 10)
    ]
    next_due = {kind: float_or_none(value) for kind, value in zip(KINDS, nexts, strict=True)}
    set_aside = [(aside[i], aside[i + 1]) for i in range(0, len(aside), 2)]
    return ClaimResult(jobs, next_due, set_aside)


class RunStore:
    redis: Redis
    keys: Keys
    scripts: Scripts
    publish: str  # PUBLISH, or SPUBLISH on a Redis Cluster (see wakeups.py)
    wait_replicas: int

    if TYPE_CHECKING:

        def queue(self, name: str) -> RunStore: ...  # RedisStore's

    @on_redis
    async def claim_due(
        self,
        now_ms: int,
        limits: dict[str, int],
        daemon: str,
        lease_until_ms: int,
        aging_ms: int = PRIORITY_AGING_MS,
        *,
        horizon_ms: float | None = None,
    ) -> ClaimResult:
        """Claim this queue's due jobs, at most `limits` per kind, higher priorities
        first (aged by `aging_ms` a level, see lua/claim.lua); with `horizon_ms`, the
        jobs due up to it (the daemon's lead: it holds them until their due time)."""
        call = self._claim_call(
            now_ms, limits, daemon, lease_until_ms, aging_ms, horizon_ms=horizon_ms
        )
        return self._claimed(await call.script(keys=call.keys, args=call.args))

    @on_redis
    async def claim_queues(
        self,
        asks: Mapping[str, dict[str, int]],
        now_ms: int,
        daemon: str,
        lease_until_ms: int,
        aging_ms: int = PRIORITY_AGING_MS,
        *,
        horizon_ms: float | None = None,
    ) -> dict[str, ClaimResult]:
        """claim_due in each of these queues (queue -> limits), in one round trip."""
        if not asks:
            return {}
        calls = [
            self.queue(q)._claim_call(
                now_ms, limits, daemon, lease_until_ms, aging_ms, horizon_ms=horizon_ms
            )
            for q, limits in asks.items()
        ]
        replies = await run_calls(self.redis, calls)
        return {q: self.queue(q)._claimed(r) for q, r in zip(asks, replies, strict=True)}

    def _claim_call(
        self, now_ms: int, limits: dict[str, int], daemon: str, lease_until_ms: int,
        aging_ms: int, *, horizon_ms: float | None,
    ) -> ScriptCall:  # fmt: skip
        args = claim_args(
            now_ms, limits, daemon, lease_until_ms, aging_ms=aging_ms, horizon_ms=horizon_ms
        )
        return ScriptCall(self.scripts.claim, self.keys.claim, args)

    def _claimed(self, reply: Any) -> ClaimResult:
        return claimed(reply, self.keys.queue)

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
                    o.result_json, o.error, o.detail_json, int(o.give_back), o.hand_over,
                )
                for o in outcomes
            ]
        ).decode()  # fmt: skip
        args: list[str | int] = [now_ms, daemon, _SUCCEED.sources_argv, self.keys.wake_channel,
                                 packed, State.FAILED, self.publish, DEPENDENCY_ARGV]  # fmt: skip
        return ScriptCall(self.scripts.finish, self.keys.running_ends, args)

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
                DEPENDENCY_ARGV,
            ],
        )
        return [
            ReapedJob(flat[i], flat[i + 1], int(flat[i + 2]), flat[i + 3], flat[i + 4])
            for i in range(0, len(flat), 5)
        ]
