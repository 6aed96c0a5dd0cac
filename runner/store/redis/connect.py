"""The Redis client runner's stores use: one place that names the driver's options."""

from __future__ import annotations

import socket

from redis.asyncio import Redis

# The driver's client, for callers that hand one to a store (the client, the tests).
RedisClient = Redis

_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}


def redis_client(url: str) -> Redis:
    """A client tuned for the daemon's hot path.

    No socket timeout: redis-py wraps every send in asyncio.wait_for when one is
    set, a task per command; TCP keepalive finds a dead server (about 25 s)
    instead. encoding_errors="replace": bytes that are not UTF-8 (written by
    someone else) surface as a quarantined job, not as an exception in a reader.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        encoding_errors="replace",
        socket_connect_timeout=5,
        socket_timeout=None,
        socket_keepalive=True,
        socket_keepalive_options=_KEEPALIVE,
    )
