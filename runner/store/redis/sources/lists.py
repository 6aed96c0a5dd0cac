"""A list source's verbs: the reliable-queue pattern on an application's Redis list.

Items move atomically (lua/source_list_take.lua) from the list into this consumer's
processing list, each wrapped with a token that names it for good; an item leaves
the processing list only once its job was accepted or it was dead-lettered. Every
consumer keeps a heartbeat key alive; a live consumer takes over the items of one
whose heartbeat expired (lua/source_list_recover.lua). The keys beside the list
share its name as a prefix: on Redis Cluster, name the list with a hash tag
("{orders}") so they share its slot.

Items are read as bytes (this client does not decode), so an item that is not UTF-8
is removed by its exact bytes once it was dead-lettered, never left behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from runner.store.failures import on_redis
from runner.store.redis.connect import redis_client
from runner.store.redis.sources.message import SourceMessage
from runner.store.redis.sources.stream import dead_letter_fields


def _script(name: str) -> str:
    return (resources.files("runner.store.redis") / "lua" / f"{name}.lua").read_text("utf-8")


def _unwrap(wrapped: bytes) -> SourceMessage:
    token, _, item = wrapped.partition(b"\n")
    text = item.decode(errors="replace")
    return SourceMessage(token.decode(errors="replace"), item=text, raw=wrapped)


class SourceList:
    """One list taken from by one consumer (this daemon)."""

    def __init__(
        self, url: str, key: str, *, group: str, consumer: str, dead_letter: str, name: str
    ) -> None:
        self.redis: Redis = Redis.from_url(
            url, decode_responses=False, socket_connect_timeout=5, socket_keepalive=True
        )
        self.text = redis_client(url)  # for the dead-letter stream's text fields
        self.key = key
        self.consumer = consumer
        self.dead_letter_stream = dead_letter
        self.name = name
        base = f"{key}:{group}"
        self.consumers_key = f"{base}:consumers"
        self.seq_key = f"{base}:seq"
        self._base = base
        self.landing = self.landing_of(consumer)
        self.processing = self.processing_of(consumer)
        self._take = self.redis.register_script(_script("source_list_take"))
        self._recover = self.redis.register_script(_script("source_list_recover"))

    def alive_of(self, consumer: str) -> str:
        return f"{self._base}:alive:{consumer}"

    def landing_of(self, consumer: str) -> str:
        return f"{self._base}:landing:{consumer}"

    def processing_of(self, consumer: str) -> str:
        return f"{self._base}:processing:{consumer}"

    async def close(self) -> None:
        await self.redis.aclose()
        await self.text.aclose()

    @on_redis
    async def heartbeat(self, ttl_ms: int) -> None:
        """This consumer is alive for `ttl_ms` more; listed among the list's consumers."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.alive_of(self.consumer), b"1", px=ttl_ms)
            pipe.sadd(self.consumers_key, self.consumer)
            await pipe.execute()

    @on_redis
    async def leave(self) -> None:
        """At a clean stop: the heartbeat goes at once, so whatever is left here (an item
        a cancelled blocking read landed) is taken over now, not after the idle time."""
        await self.redis.delete(self.alive_of(self.consumer))

    @on_redis
    async def take(self, count: int) -> list[SourceMessage]:
        """Up to `count` items, moved into this consumer's processing list."""
        keys = [self.key, self.landing, self.processing, self.seq_key]
        reply = await self._take(keys=keys, args=[count, secrets.token_hex(4)])
        return [_unwrap(wrapped) for wrapped in reply]

    @on_redis
    async def wait(self, block_s: float) -> bool:
        """Wait up to `block_s` for an item (moved to the landing list, which the next
        take drains first); whether one came."""
        timeout: Any = block_s  # Redis 6.0+ takes a fractional timeout
        moved = await self.redis.blmove(self.key, self.landing, timeout, "RIGHT", "LEFT")
        return moved is not None

    @on_redis
    async def ack_accepted(self, messages: Sequence[SourceMessage]) -> None:
        """Items whose jobs were accepted leave the processing list."""
        if not messages:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.lrem(self.processing, 1, _raw(message))  # type: ignore[arg-type]  # the stored bytes
            await pipe.execute()

    @on_redis
    async def dead_letter(self, rejected: Sequence[tuple[SourceMessage, str]]) -> None:
        """Each item to the dead-letter stream with its reason, and out of the processing
        list, in one transaction."""
        if not rejected:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for message, reason in rejected:
                fields: dict[Any, Any] = dead_letter_fields(self.name, message, reason)
                fields["item"] = _raw(message).partition(b"\n")[2]
                pipe.xadd(self.dead_letter_stream, fields)
            for message, _ in rejected:
                pipe.lrem(self.processing, 1, _raw(message))  # type: ignore[arg-type]  # the stored bytes
            await pipe.execute()

    @on_redis
    async def dead_consumers(self) -> list[str]:
        """Consumers of the list whose heartbeat expired (this one aside)."""
        found: Any = await self.redis.smembers(self.consumers_key)
        members = [m.decode(errors="replace") for m in found]
        others = [m for m in members if m != self.consumer]
        if not others:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for other in others:
                pipe.exists(self.alive_of(other))
            alive = await pipe.execute()
        return [other for other, up in zip(others, alive, strict=True) if not up]

    @on_redis
    async def recover(self, dead: str) -> list[SourceMessage]:
        """The dead consumer's items, now this one's to process; [] if it is alive."""
        keys = [
            self.consumers_key, self.alive_of(dead), self.landing_of(dead),
            self.processing_of(dead), self.processing, self.seq_key,
        ]  # fmt: skip
        reply = await self._recover(keys=keys, args=[dead, secrets.token_hex(4)])
        if not isinstance(reply, list):
            return []
        return [_unwrap(wrapped) for wrapped in reply]

    @on_redis
    async def processing_items(self) -> list[SourceMessage]:
        """This consumer's processing list, oldest first (after a restart of the loop)."""
        found: Any = await self.redis.lrange(self.processing, 0, -1)
        return [_unwrap(wrapped) for wrapped in reversed(found)]

    @on_redis
    async def backlog(self) -> int:
        """Items waiting in the list."""
        return int(await self.redis.llen(self.key))


def _raw(message: SourceMessage) -> bytes:
    assert message.raw is not None, "a list item keeps its wrapped bytes"
    return message.raw
