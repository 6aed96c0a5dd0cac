"""The sources' store verbs against a real Redis: a stream read through a consumer group
and a list taken from in the reliable-queue pattern, each with its dead-letter stream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from redis.asyncio import Redis

from runner.store import SourceList, SourceMessage, SourceStream
from tests.real_servers import Servers


async def _entries(redis: Redis, stream: str) -> Any:
    return await redis.xrange(stream)


def _stream(servers: Servers, prefix: str, consumer: str) -> SourceStream:
    return SourceStream(
        servers.redis_url, f"{{{prefix}}}:orders", group="runner", consumer=consumer,
        dead_letter=f"{{{prefix}}}:orders:dead", name="orders",
    )  # fmt: skip


def _list(servers: Servers, prefix: str, consumer: str) -> SourceList:
    return SourceList(
        servers.redis_url, f"{{{prefix}}}:mails", group="runner", consumer=consumer,
        dead_letter=f"{{{prefix}}}:mails:dead", name="mails",
    )  # fmt: skip


async def test_a_stream_entry_stays_pending_until_acknowledged(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """Read through the group, an entry is pending on its consumer until acknowledged;
    the same consumer reading its own pending entries (id 0) gets it again. An
    acknowledgement goes with the next read, or when flushed."""
    stream = _stream(servers, prefix, "a")
    await stream.ensure_group()
    await stream.ensure_group()  # a second start finds the group there
    entry = str(await redis.xadd(stream.stream, {"args": "[1]"}))
    (message,) = await stream.read(10, 100)
    assert message == SourceMessage(entry, {"args": "[1]"})
    assert await stream.pending() == 1
    assert await stream.read(10, 10, own_pending=True) == [message]
    await stream.ack_accepted([message])
    assert await stream.pending() == 1  # not sent yet
    assert await stream.read(10, 10, own_pending=True) == []  # sent before reading
    assert await stream.pending() == 0
    second = str(await redis.xadd(stream.stream, {"args": "[2]"}))
    (message,) = await stream.read(10, 100)
    await stream.ack_accepted([message])
    await stream.flush_acks()
    assert message.id == second and await stream.pending() == 0
    await stream.close()


async def test_a_dead_consumers_entries_are_claimed_after_the_idle_time(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """Entries a consumer read and never acknowledged are claimed by another once idle
    for the given time, not before."""
    dead, live = _stream(servers, prefix, "dead"), _stream(servers, prefix, "live")
    await dead.ensure_group()
    for n in range(3):
        await redis.xadd(dead.stream, {"n": str(n)})
    assert len(await dead.read(10, 100)) == 3
    assert await live.claim(60_000, 10) == ("0-0", [])
    await asyncio.sleep(0.05)
    start, claimed = await live.claim(20, 10)
    assert start == "0-0"
    assert [m.fields for m in claimed] == [{"n": "0"}, {"n": "1"}, {"n": "2"}]
    assert await live.read(10, 10, own_pending=True) == claimed
    await dead.close()
    await live.close()


async def test_a_dead_lettered_entry_keeps_its_reason_and_is_acknowledged(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """Dead-lettering writes the reason, the source, the message id and the original
    fields to the dead-letter stream and acknowledges the entry, together."""
    stream = _stream(servers, prefix, "a")
    await stream.ensure_group()
    entry = await redis.xadd(stream.stream, {"args": "not json"})
    (message,) = await stream.read(10, 100)
    await stream.dead_letter([(message, "field 'args': not JSON")])
    assert await stream.pending() == 0
    ((_, fields),) = await _entries(redis, stream.dead_letter_stream)
    assert fields["reason"] == "field 'args': not JSON"
    assert (fields["source"], fields["message_id"]) == ("orders", entry)
    assert orjson.loads(fields["fields"]) == {"args": "not json"}
    await stream.close()


async def test_a_deleted_stream_gets_its_group_back(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """A stream deleted under the reader (its group with it) is read again once written:
    the group is created anew instead of the reader failing for ever."""
    stream = _stream(servers, prefix, "a")
    await stream.ensure_group()
    await redis.delete(stream.stream)
    assert await stream.read(10, 10) == []
    await redis.xadd(stream.stream, {"n": "1"})
    assert [m.fields for m in await stream.read(10, 100)] == [{"n": "1"}]
    await stream.close()


async def test_list_items_move_to_processing_with_a_token_for_good(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """Taken items are in the consumer's processing list, oldest first, each with a token
    of the list's generation and a growing number; acknowledged, they leave it."""
    items = _list(servers, prefix, "a")
    await redis.lpush(items.key, "one", "two", "three")
    taken = await items.take(2)
    assert [m.item for m in taken] == ["one", "two"]
    generation = taken[0].id.split("-")[0]
    assert [m.id for m in taken] == [f"{generation}-1", f"{generation}-2"]
    assert await items.processing_items() == taken
    await items.ack_accepted(taken[:1])
    assert [m.item for m in await items.processing_items()] == ["two"]
    (last,) = await items.take(10)
    assert last.id == f"{generation}-3"
    assert await items.backlog() == 0
    await items.close()


async def test_a_blocking_wait_lands_an_item_the_next_take_returns(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """An empty list is waited on; the item that arrives is in the landing list, and the
    next take returns it first."""
    items = _list(servers, prefix, "a")
    assert await items.wait(0.05) is False
    waiting = asyncio.ensure_future(items.wait(2))
    await asyncio.sleep(0.05)
    await redis.lpush(items.key, "late")
    assert await waiting is True
    assert [m.item for m in await items.take(10)] == ["late"]
    await items.close()


async def test_a_dead_consumers_items_are_recovered_with_their_tokens(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """A consumer whose heartbeat expired hands its processing items (same tokens) and
    its landed item (wrapped now) to a live one; a live consumer keeps its own."""
    dead, live = _list(servers, prefix, "dead"), _list(servers, prefix, "live")
    await dead.heartbeat(60_000)
    await live.heartbeat(60_000)
    await redis.lpush(dead.key, "a", "b", "c")
    held = await dead.take(2)
    await dead.wait(0.1)  # "c" lands in the dead consumer's landing list
    assert await live.dead_consumers() == []
    assert await live.recover("dead") == []  # alive: nothing moves
    await redis.delete(dead.alive_of("dead"))
    assert await live.dead_consumers() == ["dead"]
    recovered = await live.recover("dead")
    assert [m.id for m in recovered[:2]] == [m.id for m in held]
    assert [m.item for m in recovered] == ["a", "b", "c"]
    assert await live.dead_consumers() == []
    assert sorted(m.item or "" for m in await live.processing_items()) == ["a", "b", "c"]
    assert await redis.llen(dead.processing) == 0
    await dead.close()
    await live.close()


async def test_a_list_item_that_is_not_text_is_dead_lettered_byte_for_byte(
    servers: Servers, redis: Redis, prefix: str
) -> None:
    """An item that is not UTF-8 is dead-lettered with its exact bytes and removed from
    the processing list (matched by bytes, not by a decoded copy)."""
    items = _list(servers, prefix, "a")
    await redis.lpush(items.key, "ok")
    raw = Redis.from_url(servers.redis_url)
    await raw.lpush(items.key, b"\xff\xfe bad")
    taken = await items.take(10)
    bad = taken[1]
    await items.dead_letter([(bad, "not JSON")])
    assert [m.item for m in await items.processing_items()] == ["ok"]
    ((_, fields),) = await _entries(raw, items.dead_letter_stream)
    assert fields[b"item"] == b"\xff\xfe bad"
    assert fields[b"reason"] == b"not JSON"
    assert fields[b"message_id"] == bad.id.encode()
    await raw.aclose()
    await items.close()
