"""A stream source's verbs: read through a consumer group, take over a dead consumer's
entries, acknowledge, dead-letter.

Everything in the stream is someone else's data: an entry with no fields (deleted
while pending) is acknowledged and skipped; the group is created where missing (a
stream deleted and written again loses its groups), reading from the stream's start.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from runner.store.failures import on_redis
from runner.store.redis.connect import redis_client
from runner.store.redis.sources.message import SourceMessage


def _messages(entries: Any) -> tuple[list[SourceMessage], list[str]]:
    """The entries with fields, and the ids of those deleted while pending."""
    messages, gone = [], []
    for entry in entries or ():
        if not entry or entry[0] is None:
            continue
        entry_id, fields = entry[0], entry[1]
        if fields:
            messages.append(SourceMessage(str(entry_id), dict(fields)))
        else:
            gone.append(str(entry_id))
    return messages, gone


def dead_letter_fields(source: str, message: SourceMessage, reason: str) -> dict[str, str]:
    """The dead-letter entry: why, where from, and the message as it was."""
    entry = {"reason": reason, "source": source, "message_id": message.id,
             "at": str(int(time.time() * 1000))}  # fmt: skip
    if message.item is not None:
        entry["item"] = message.item
    else:
        entry["fields"] = orjson.dumps(message.fields or {}).decode()
    return entry


class SourceStream:
    """One stream read by one consumer (this daemon) of one group."""

    def __init__(
        self, url: str, stream: str, *, group: str, consumer: str, dead_letter: str, name: str
    ) -> None:
        self.redis: Redis = redis_client(url)
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dead_letter_stream = dead_letter
        self.name = name
        # Accepted messages not acknowledged yet: sent with the next read, in its
        # round trip (or by flush_acks). A crash loses only the acknowledgement:
        # the messages come again, and their jobs exist under the same ids.
        self._accepted: list[str] = []

    async def close(self) -> None:
        await self.redis.aclose()

    @on_redis
    async def ensure_group(self) -> None:
        """The group, created at the stream's start where missing (and the stream too)."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @on_redis
    async def read(
        self, count: int, block_ms: int | None, own_pending: bool = False
    ) -> list[SourceMessage]:
        """New entries for this consumer (blocking up to `block_ms`), or with `own_pending`
        the entries it was given before and never acknowledged (after a restart)."""
        start = "0" if own_pending else ">"
        accepted, self._accepted = self._accepted, []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if accepted:
                    pipe.xack(self.stream, self.group, *accepted)
                pipe.xreadgroup(
                    self.group, self.consumer, {self.stream: start}, count=count,
                    block=None if own_pending else block_ms,
                )  # fmt: skip
                reply: Any = (await pipe.execute())[-1]
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # a new group: what was read before comes again
            return []
        except BaseException:  # an outage: acknowledged with the next read (twice is harmless)
            self._accepted = accepted + self._accepted
            raise
        return await self._usable(reply[0][1] if reply else [])

    async def _usable(self, entries: Any) -> list[SourceMessage]:
        messages, gone = _messages(entries)
        if gone:
            await self.redis.xack(self.stream, self.group, *gone)
        return messages

    @on_redis
    async def claim(
        self, min_idle_ms: int, count: int, start: str = "0-0"
    ) -> tuple[str, list[SourceMessage]]:
        """Entries pending on any consumer for `min_idle_ms` or more, now this one's
        (XAUTOCLAIM): the next start ("0-0" when the pending list was walked through)."""
        try:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, min_idle_ms, start_id=start, count=count
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return "0-0", []
        return str(reply[0]), await self._usable(reply[1])

    async def ack_accepted(self, messages: Sequence[SourceMessage]) -> None:
        """Messages whose jobs were accepted leave the group's pending list: with the
        next read's round trip, or at flush_acks."""
        self._accepted += [m.id for m in messages]

    @on_redis
    async def flush_acks(self) -> None:
        """Acknowledge what was accepted now (before a pause in reading, at stop)."""
        accepted, self._accepted = self._accepted, []
        try:
            if accepted:
                await self.redis.xack(self.stream, self.group, *accepted)
        except BaseException:
            self._accepted = accepted + self._accepted
            raise

    @on_redis
    async def dead_letter(self, rejected: Sequence[tuple[SourceMessage, str]]) -> None:
        """Each message to the dead-letter stream with its reason, and acknowledged, in one
        transaction: a crash leaves it either pending here or dead-lettered, never both."""
        if not rejected:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for message, reason in rejected:
                fields: dict[Any, Any] = dead_letter_fields(self.name, message, reason)
                pipe.xadd(self.dead_letter_stream, fields)
            pipe.xack(self.stream, self.group, *(message.id for message, _ in rejected))
            await pipe.execute()

    @on_redis
    async def pending(self) -> int:
        """Entries read by a consumer of the group and not yet acknowledged."""
        try:
            summary = await self.redis.xpending(self.stream, self.group)
        except ResponseError:
            return 0
        return int(summary.get("pending") or 0) if isinstance(summary, dict) else 0

    @on_redis
    async def forget_idle_consumers(self, idle_ms: int) -> int:
        """Drop consumers that hold nothing and were idle this long: each daemon start is
        a new consumer, and a group would otherwise list every one that ever lived."""
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, self.group)
        except ResponseError:
            return 0
        idle = [
            c["name"] for c in consumers
            if c.get("pending") == 0 and int(c.get("idle") or 0) >= idle_ms
            and c["name"] != self.consumer
        ]  # fmt: skip
        for name in idle:
            await self.redis.xgroup_delconsumer(self.stream, self.group, name)
        return len(idle)
