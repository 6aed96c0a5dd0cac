"""How long the transition stream keeps its entries, and what its readers still owe.

The stream is read by the recorders' consumer group, by each webhook sink's own
group, and without a group by live feeds and waiting clients. So an entry is not
deleted when Postgres has it: the stream keeps every entry for `[events] keep`
(so a feed can resume from an event id), and is trimmed below the oldest entry
that any consumer group has not acknowledged yet, whatever its age. A group that
lags therefore holds the stream: that is what makes delivery at least once.

Stream ids are "ms-seq"; they are compared as pairs of numbers, never as text.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import ResponseError

COUNT_UNKNOWN_LAG_UP_TO = 10_000  # a lag Redis cannot tell is counted up to this


class GroupState(NamedTuple):
    """One consumer group's position: the last entry it was given, how many of the
    entries it was given are unacknowledged (and the oldest of them), and how many
    entries it was not given yet (None when Redis cannot tell: before 7.0)."""

    name: str
    last_delivered: str
    pending: int
    oldest_pending: str | None
    lag: int | None


class Backlog(NamedTuple):
    """What the recorders have not acknowledged: entries (read or not), of which
    `pending` were read by a recorder, and the oldest one's id."""

    entries: int
    pending: int
    oldest_id: str | None


def id_pair(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    ms, seq = id_pair(entry_id)
    return f"{ms}-{seq + 1}"


async def group_states(redis: Redis, stream: str, only: str | None = None) -> list[GroupState]:
    """Every consumer group of the stream (or the one named `only`); none while the
    stream does not exist."""
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []
        raise
    groups = [g for g in groups if only is None or g["name"] == only]
    if not groups:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.xpending(stream, group["name"])
        summaries = await pipe.execute()
    return [_state(group, summary) for group, summary in zip(groups, summaries, strict=True)]


def _state(group: dict[str, Any], summary: dict[str, Any]) -> GroupState:
    lag = group.get("lag")
    return GroupState(
        name=str(group["name"]),
        last_delivered=str(group["last-delivered-id"]),
        pending=int(summary["pending"]),
        oldest_pending=str(summary["min"]) if summary["pending"] else None,
        lag=None if lag is None else int(lag),
    )


def group_floor(group: GroupState) -> str:
    """The oldest entry the group may still need: its oldest unacknowledged one, else
    the first after the last it was given."""
    return group.oldest_pending or next_id(group.last_delivered)


async def trim(redis: Redis, stream: str, keep_ms: int, now_ms: int) -> None:
    """Drop entries older than `keep_ms` that every group has acknowledged. Entries
    only ever go to a group in order and pending ones stay pending, so a floor read a
    moment ago can only be lower than the true one: trimming below it is safe."""
    floors = [id_pair(group_floor(group)) for group in await group_states(redis, stream)]
    if not floors:
        return  # no reader has a group yet (or the stream is new): nothing is owed
    cutoff = min([(max(now_ms - keep_ms, 0), 0), *floors])
    if cutoff > (0, 0):
        await redis.xtrim(stream, minid=f"{cutoff[0]}-{cutoff[1]}", approximate=False)


async def backlog(redis: Redis, stream: str, group_name: str) -> Backlog:
    """The group's backlog: pending entries plus those it was not given yet."""
    group = next(iter(await group_states(redis, stream, only=group_name)), None)
    if group is None:  # no group yet: everything in the stream is owed
        first: Any = await redis.xrange(stream, count=1)
        return Backlog(int(await redis.xlen(stream)), 0, str(first[0][0]) if first else None)
    after = f"({group.last_delivered}"
    if group.lag is None:
        unread: Any = await redis.xrange(stream, after, "+", count=COUNT_UNKNOWN_LAG_UP_TO)
        lag, first_unread = len(unread), (str(unread[0][0]) if unread else None)
    else:
        lag = group.lag
        head: Any = await redis.xrange(stream, after, "+", count=1) if lag else []
        first_unread = str(head[0][0]) if head else None
    return Backlog(group.pending + lag, group.pending, group.oldest_pending or first_unread)
