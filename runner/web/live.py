"""GET /api/events: every transition as it happens, as Server-Sent Events.

Each connection follows the transition stream with a Feed of its own (events/feed.py),
blocked in Redis (XREAD) until something is written: no polling. A blocked read
holds its connection for as long as the client listens, so each feed reads on a
Redis connection of its own, never one of the shared pool the rest of the API
needs (at most 100), and a server holds at most MAX_FEEDS of them: one more is
answered 503 with Retry-After. A client resumes with Last-Event-ID (the position of
the last event it got): the stream keeps entries for `[events] keep`, so a
reconnect within that misses nothing and repeats nothing; past it, a `gap` event
says so. Quiet connections get a comment every HEARTBEAT_S so proxies keep them;
a client that went away is noticed within CHECK_S, and every feed ends when the
server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from runner.errors import StoreError
from runner.events.feed import Feed, Gap
from runner.events.filters import TransitionFilter
from runner.events.transition import Transition
from runner.logs import get_logger
from runner.redact import redact_text
from runner.store import RedisStore
from runner.web import sse
from runner.web.api import CLIENT
from runner.web.errors import error_response
from runner.web.output import SAFETY_HEADERS

log = get_logger()
MAX_FEEDS = 100  # live feeds one server serves at once, each on a Redis connection of its own
HEARTBEAT_S = 15.0  # a comment after this long without an event
CHECK_S = 0.5  # how often a feed looks whether its client is still there
RECONNECT_MS = 2000  # what an EventSource waits before reconnecting by itself
STREAM_HEADERS = {
    **SAFETY_HEADERS,
    "Content-Type": "text/event-stream; charset=utf-8",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

routes = web.RouteTableDef()


class LiveFeeds:
    """The live feeds of one server: how many are open, and the signal that ends them
    all when the server stops."""

    def __init__(self, limit: int = MAX_FEEDS) -> None:
        self.limit = limit
        self.open = 0
        self.stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def slot(self, store: RedisStore) -> AsyncIterator[RedisStore]:
        """`store` on a connection of its own for one feed, closed when it ends."""
        self.open += 1
        own = store.on_own_connection()
        try:
            yield own
        finally:
            self.open -= 1
            await own.close()

    async def stop(self, app: web.Application) -> None:
        """Tell every feed to end (on_shutdown): the server's stop then waits for
        nothing but requests that do end."""
        self.stopping.set()


FEEDS = web.AppKey("feeds", LiveFeeds)


def add_live_routes(app: web.Application) -> None:
    """GET /api/events, and the feeds' registry, ended at shutdown."""
    app[FEEDS] = LiveFeeds()
    app.on_shutdown.append(app[FEEDS].stop)
    app.add_routes(routes)


@routes.get("/api/events")
async def events(request: web.Request) -> web.StreamResponse:
    """The stream; 400 for a bad filter or Last-Event-ID, 503 when the server already
    serves MAX_FEEDS feeds or cannot reach Redis, both before the stream starts."""
    wanted = sse.feed_filter(request.query)
    after = sse.resume_position(request.headers, request.query)
    feeds = request.app[FEEDS]
    if feeds.open >= feeds.limit or feeds.stopping.is_set():
        return _busy(feeds)
    async with feeds.slot(request.app[CLIENT].store) as store:
        feed, first = await _start(store, wanted, after)
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client went away
            await response.write(sse.retry(RECONNECT_MS) + first)
            await _follow(request, response, feed, feeds.stopping)
    return response


def _busy(feeds: LiveFeeds) -> web.Response:
    why = "this server is stopping" if feeds.stopping.is_set() else (
        f"this server already serves {feeds.limit} live feeds, each on a Redis connection "
        "of its own")  # fmt: skip
    response = error_response(503, f"{why}; try again shortly (Retry-After)")
    response.headers["Retry-After"] = "5"
    return response


async def _start(
    store: RedisStore, wanted: TransitionFilter, after: str | None
) -> tuple[Feed, bytes]:
    """The feed, at now or after `after`, and what to send first: a gap if the
    stream was trimmed past `after`, and the rest of its entry."""
    feed = Feed(store, wanted, block_ms=int(HEARTBEAT_S * 1000), every_queue=True)
    if after is None:
        await feed.start_now()
        return feed, b""
    rest, gap = await feed.start_after(after)
    return feed, _gap(gap) + sse.transition_events(rest)


def _gap(gap: Gap | None) -> bytes:
    return b"" if gap is None else sse.gap_event(gap)


async def _follow(
    request: web.Request, response: web.StreamResponse, feed: Feed, stopping: asyncio.Event
) -> None:
    """Write transitions as the feed reads them, a comment after HEARTBEAT_S of
    silence, until the client leaves, the server stops or Redis fails (then an
    `error` event: the client resumes from its last event id)."""
    gone = asyncio.create_task(_until_gone(request, stopping))
    quiet_since = time.monotonic()
    try:
        while True:
            batch = await _next(feed, gone)
            if batch is None:
                return
            if batch:
                await response.write(sse.transition_events(batch))
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_S:
                await response.write(sse.comment("keepalive"))
                quiet_since = time.monotonic()
    except StoreError as exc:
        log.warning("live feed ended", error=redact_text(str(exc)))
        await response.write(sse.event("error", {"error": f"cannot reach a server: {exc}"}))
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone


async def _next(feed: Feed, gone: asyncio.Task[None]) -> list[Transition] | None:
    """The feed's next batch ([] after HEARTBEAT_S without one), or None once the
    client left or the server stops: the read blocked in Redis is then cancelled
    (its connection is the feed's own, closed right after)."""
    reading = asyncio.ensure_future(feed.next_batch())
    try:
        await asyncio.wait((reading, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when the handler itself is cancelled: no read is left behind
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
    return None if reading.cancelled() else reading.result()


async def _until_gone(request: web.Request, stopping: asyncio.Event) -> None:
    """Returns once the client's connection closed or the server stops. aiohttp tells
    a handler of neither while it waits on something else, so this looks every
    CHECK_S (no Redis command: a look at the socket)."""
    while not stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), CHECK_S)
