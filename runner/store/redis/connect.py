"""The Redis client runner's stores use: one place that names the driver's options."""

from __future__ import annotations

import socket

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis

# The driver's client, for callers that hand one to a store (the client, the tests).
RedisClient = Redis

_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}
MAX_CONNECTIONS = 100  # per client; more callers at once wait for one to be free
CONNECTION_WAIT_S = 30.0  # ...this long at most, then the call fails as unavailable


def redis_client(url: str) -> Redis:
    """A client tuned for the daemon's hot path.

    No socket timeout: redis-py wraps every send in asyncio.wait_for when one is
    set, a task per command; TCP keepalive finds a dead server (about 25 s)
    instead. encoding_errors="replace": bytes that are not UTF-8 (written by
    someone else) surface as a quarantined job, not as an exception in a reader.
    A blocking pool: an application awaiting a thousand results at once queues
    for the pool's connections instead of failing with "Too many connections".
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=CONNECTION_WAIT_S,
        decode_responses=True,
        encoding_errors="replace",
        socket_connect_timeout=5,
        socket_timeout=None,
        socket_keepalive=True,
        socket_keepalive_options=_KEEPALIVE,
    )
    return Redis.from_pool(pool)  # closing the client closes its pool


def own_connection(redis: Redis) -> Redis:
    """A client of the same server, with the same options, on a pool of one connection
    of its own: for a reader that blocks in Redis (a live feed's XREAD) for as long
    as someone listens, so that it never holds a connection of the shared pool (at
    most 100 by default) that requests need. Close it with aclose()."""
    pool = redis.connection_pool
    own = ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **pool.connection_kwargs
    )
    return Redis.from_pool(own)  # closing the client closes its pool
