"""What a concurrency cap, a rate limit or a fair key holds back, as operators see it
(the limits themselves are kept by the scripts: lua/lib.lua, claim.lua, finish.lua,
reap.lua, cancel.lua).

The groups the scripts saw busy lately are listed in <due prefix>limited (lib.lua);
each group's figures are read from its own sets, a few O(1) reads a group. Anything
read back is untrusted: a value of the wrong type counts as nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.store.failures import on_redis
from runner.store.redis.keys import Keys

MOST_GROUPS = 200  # groups read a queue, the most recently busy first


@dataclass(frozen=True)
class LimitGroup:
    """One group of a cap, a rate or a fair key, in one queue, now."""

    queue: str
    group: str  # its task, or "<task>=<key value>"
    running: int  # jobs holding one of its concurrency slots
    waiting_cap: int  # due jobs waiting for a slot
    waiting_rate: int  # due jobs waiting for its rate to allow a start
    waiting_turn: int  # jobs waiting for their key's turn (fair_key)
    rate_starts: int  # starts its rate allowed, ever (a counter)
    next_start_ms: int | None  # when its rate next allows a start, if jobs wait for it

    @property
    def task(self) -> str:
        return self.group.partition("=")[0]

    @property
    def key(self) -> str | None:
        """The value of its key, or None for a task-wide group."""
        _, eq, key = self.group.partition("=")
        return key if eq else None

    @property
    def waiting(self) -> int:
        return self.waiting_cap + self.waiting_rate + self.waiting_turn


def _count(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(int(value), 0)
    if isinstance(value, str):
        try:
            return max(int(value), 0)
        except ValueError:
            return 0
    return 0


class CapStore:
    redis: Redis
    keys: Keys

    if TYPE_CHECKING:

        def queue(self, name: str) -> CapStore: ...  # RedisStore's

        async def queue_names(self, fresh: bool = False) -> list[str]: ...  # RedisStore's

    @on_redis
    async def cap_wait(self, queue: str, group: str, job_id: str) -> int | None:
        """How many jobs of the group run now, if this job waits for one of its
        slots; None if it does not wait for one."""
        keys = self.queue(queue).keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(f"{keys.due_prefix}capped:{group}", job_id)
            pipe.zcard(f"{keys.due_prefix}slots:{group}")
            waiting, running = await pipe.execute()
        return None if waiting is None else int(running)

    @on_redis
    async def rate_wait(self, queue: str, group: str, job_id: str) -> int | None:
        """When the group's rate next allows a start (ms), if this job waits for it;
        None if it does not wait for its rate."""
        keys = self.queue(queue).keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(f"{keys.due_prefix}rated:{group}", job_id)
            pipe.zscore(f"{keys.due_prefix}ratewake", group)
            waiting, wake = await pipe.execute()
        return None if waiting is None or wake is None else int(wake)

    @on_redis
    async def turn_wait(
        self, queue: str, group: str, kind: str, job_id: str
    ) -> tuple[int, int] | None:
        """How many jobs of its key wait with it, and how many keys wait for their turn,
        if this job waits for its key's turn; None if it does not."""
        keys = self.queue(queue).keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(f"{keys.due_prefix}fair:{group}", job_id)
            pipe.zcard(f"{keys.due_prefix}fair:{group}")
            pipe.zcard(f"{keys.due_prefix}fairq:{kind}")
            waiting, jobs, groups = await pipe.execute(raise_on_error=False)
        if waiting is None or isinstance(waiting, Exception):
            return None
        return _count(jobs), _count(groups)

    @on_redis
    async def limit_groups(self, most: int = MOST_GROUPS) -> list[LimitGroup]:
        """The groups busy lately in every queue, with what each runs and holds back."""
        found: list[LimitGroup] = []
        for name in await self.queue_names():
            found += await self.queue(name)._groups_here(name, most)
        return found

    async def _groups_here(self, queue: str, most: int) -> list[LimitGroup]:
        prefix = self.keys.due_prefix
        try:
            groups = [str(g) for g in await self.redis.zrevrange(f"{prefix}limited", 0, most - 1)]
        except ResponseError:  # a key of another type: nothing to show
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for group in groups:
                pipe.zcard(f"{prefix}slots:{group}")
                pipe.zcard(f"{prefix}capped:{group}")
                pipe.zcard(f"{prefix}rated:{group}")
                pipe.zcard(f"{prefix}fair:{group}")
                pipe.hget(f"{prefix}ratestarts", group)
                pipe.zscore(f"{prefix}ratewake", group)
            replies = await pipe.execute(raise_on_error=False)
        return [_group(queue, group, replies[i * 6 : i * 6 + 6]) for i, group in enumerate(groups)]


def _group(queue: str, group: str, replies: list[Any]) -> LimitGroup:
    running, capped, rated, turn, starts, wake = replies
    return LimitGroup(
        queue, group, _count(running), _count(capped), _count(rated), _count(turn),
        _count(starts), None if wake is None else _count(wake),
    )  # fmt: skip


def hash_counts(raw: Any) -> dict[str, int]:
    """A hash of counts the scripts keep (untrusted: a count that is no whole number
    reads 0, a key of another type nothing): <due prefix>fairn, jobs waiting in
    fairness groups per kind, which are in no due set, so what counts due jobs adds
    them (a fair task's job counts as due from its enqueue); <due prefix>blockedn,
    blocked jobs per task."""
    if not isinstance(raw, dict):
        return {}
    return {str(name): _count(n) for name, n in raw.items()}
