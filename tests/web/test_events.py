"""GET /api/events: the live feed as Server-Sent Events, on the real app, Redis and
(for the reconnect) a real daemon running the jobs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runner.client.client import Client
from runner.events.transition import transitions
from runner.store.redis.store import RedisStore
from runner.web import live
from runner.web.live import FEEDS
from tests.daemon.process import DaemonProcess
from tests.web.conftest import AUTH, Serve
from tests.web.sse_reader import SseEvent, SseReader

Api = TestClient[Any, Any]


@contextlib.asynccontextmanager
async def feed(api: Api, query: str = "", **headers: str) -> AsyncIterator[SseReader]:
    """An open GET /api/events (200, text/event-stream), closed on leaving."""
    response = await api.get(f"/api/events{query}", headers={**AUTH, **headers})
    try:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield SseReader(response)
    finally:
        response.close()


def _shape(events: list[SseEvent]) -> list[tuple[str, str]]:
    return [(e.data["job_id"], e.data["to_state"]) for e in events]


async def test_a_feed_sends_the_transitions_written_after_it_opened(
    api: Api, client: Client
) -> None:
    """Jobs enqueued after connecting arrive as `transition` events, in order, each
    with its position as the SSE id and its task, event id and time in the data;
    what was written before connecting is not replayed."""
    await client.enqueue("echo", job_id="before")
    async with feed(api) as reader:
        for n in range(3):
            await client.enqueue("echo", [n], job_id=f"after-{n}")
        events = await reader.until(3)
    assert [e.name for e in events] == ["transition"] * 3
    assert _shape(events) == [(f"after-{n}", "scheduled") for n in range(3)]
    first = events[0]
    assert first.id == first.data["position"] and first.data["event_id"] == "after-0:1"
    assert first.data["task"] == "echo" and first.data["at"].endswith("Z")


async def test_filters_keep_only_the_tasks_jobs_and_states_asked_for(
    api: Api, client: Client
) -> None:
    """task, job and state filter, each repeatable or comma-separated; two feeds with
    different filters see only their own part of the same transitions."""
    async with (
        feed(api, "?task=noop&state=paused,cancelled") as by_task,
        feed(api, "?job=a&job=c") as by_job,
    ):
        a = await client.enqueue("echo", job_id="a", delay=600)
        b = await client.enqueue("noop", job_id="b", delay=600)
        c = await client.enqueue("noop", job_id="c", delay=600)
        await client.pause(b)
        await client.cancel(c)
        await client.pause(a)
        assert _shape(await by_task.until(2)) == [("b", "paused"), ("c", "cancelled")]
        assert _shape(await by_job.until(4)) == [
            ("a", "scheduled"), ("c", "scheduled"), ("c", "cancelled"), ("a", "paused"),
        ]  # fmt: skip


async def test_a_client_back_after_5_s_gets_every_event_in_between_exactly_once(
    api: Api, client: Client, store: RedisStore,
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """A client disconnects, jobs keep being enqueued and run for 5 s, and it comes
    back with Last-Event-ID: the events of both connections are the stream's own,
    in its order, none missing and none twice."""
    spawn(daemon_config()).wait_ready()
    stop = asyncio.Event()

    async def enqueue_steadily() -> int:
        n = 0
        while not stop.is_set():
            await client.enqueue("echo", [n], job_id=f"j{n}")
            n += 1
            await asyncio.sleep(0.05)
        return n

    async with feed(api) as reader:
        enqueuing = asyncio.create_task(enqueue_steadily())
        before = await reader.until(10)
    await asyncio.sleep(5)  # disconnected; jobs go on being enqueued and run
    async with feed(api, **{"Last-Event-ID": str(before[-1].id)}) as reader:
        stop.set()
        last_job = f"j{await enqueuing - 1}"
        after: list[SseEvent] = []
        while (last_job, "succeeded") not in _shape(after[-1:]):
            after += await reader.until(1)
    received = [(str(e.id), str(e.data["event_id"])) for e in before + after]
    stream = [
        (t.position, t.event_id)
        for entry in await store.stream_entries("-", 100_000)
        for t in transitions(entry.id, entry.payload)
    ]
    start = stream.index(received[0])
    assert received == stream[start : start + len(received)]
    assert len(set(received)) == len(received) and len(after) > 100


async def test_a_malformed_last_event_id_or_filter_is_refused_with_400(api: Api) -> None:
    """A Last-Event-ID (header or parameter) that is no position, an unknown state or
    parameter: 400 with a message naming it, before any stream starts."""
    cases = [
        ("", {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
        ("?last_event_id=1-0", {}, "last_event_id"),
        ("?state=done", {}, "no such state 'done'"),
        ("?tasks=echo", {}, "unknown query parameter tasks"),
    ]
    for query, headers, said in cases:
        response = await api.get(f"/api/events{query}", headers={**AUTH, **headers})
        assert response.status == 400, query
        assert said in (await response.json())["error"]


async def test_the_token_rules_are_the_apis(serve: Serve) -> None:
    """Beyond loopback, the feed needs the token like every read: 401 without, 403
    with a wrong one."""
    api = await serve(web_listen="0.0.0.0:8080")
    assert (await api.get("/api/events")).status == 401
    wrong = {"Authorization": "Bearer wrong-token-0123456789abc"}
    assert (await api.get("/api/events", headers=wrong)).status == 403
    async with feed(api):
        pass


async def test_feeds_past_the_limit_get_503_and_a_closed_one_frees_its_slot(api: Api) -> None:
    """Each feed holds a Redis connection of its own: past the server's limit a new
    one is refused 503 with Retry-After; a client that leaves is noticed at once
    (within a second) and its slot taken back."""
    assert isinstance(api.server, TestServer)
    feeds = api.server.app[FEEDS]
    feeds.limit = 1
    async with feed(api):
        response = await api.get("/api/events", headers=AUTH)
        assert response.status == 503 and response.headers["Retry-After"]
        assert "live feeds" in (await response.json())["error"]
    left = time.monotonic()
    for _ in range(40):
        if not feeds.open:
            break
        await asyncio.sleep(0.05)
    assert feeds.open == 0 and time.monotonic() - left < 1.5
    async with feed(api):
        pass


async def test_a_quiet_feed_sends_keepalives_and_ends_when_the_server_stops(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing to send, a comment keeps the connection alive; stopping the server
    ends the open feed at once instead of waiting out the shutdown timeout."""
    monkeypatch.setattr(live, "HEARTBEAT_S", 0.2)
    async with feed(api) as reader:
        assert await reader.next_comment(timeout=3) == "keepalive"
        began = time.monotonic()
        await api.server.close()
        assert await reader.next(timeout=3) is None
        assert time.monotonic() - began < 3
