"""The Redis client runner's stores use: one place that names the driver's options.

A plain server (or a Sentinel-promoted primary) gets redis-py's `Redis` on a
blocking pool. `[redis] cluster = true` gets its `RedisCluster`, with the same
options: it follows MOVED and ASK, and finds the new primary after a failover.
Every key runner writes carries the hash tag `{prefix}` (see keys.py), so on a
cluster every script, pipeline and stream read goes to the one node serving
that slot. The cluster client answers the same commands as `Redis`, so the
stores hold either under the `Redis` type; where the two differ (pub/sub, a
connection of one's own, WAIT on the connection that wrote) they ask
`is_cluster`.
"""

from __future__ import annotations

import socket
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

# The driver's client, for callers that hand one to a store (the client, the tests).
RedisClient = Redis

_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}
MAX_CONNECTIONS = 100  # per client (per node on a cluster); more callers wait for one
CONNECTION_WAIT_S = 30.0  # ...this long at most, then the call fails as unavailable

# No socket timeout: redis-py wraps every send in asyncio.wait_for when one is set,
# a task per command; TCP keepalive finds a dead server (about 25 s) instead.
# encoding_errors="replace": bytes that are not UTF-8 (written by someone else)
# surface as a quarantined job, not as an exception in a reader.
_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "encoding_errors": "replace",
    "socket_connect_timeout": 5,
    "socket_timeout": None,
    "socket_keepalive": True,
    "socket_keepalive_options": _KEEPALIVE,
}


def blocking_options() -> dict[str, Any]:
    """The same options for a blocking (threads') client; a bounded socket timeout
    there, since a thread cannot be cancelled as a task can."""
    return {**_OPTIONS, "socket_timeout": 5}


class _Cluster(RedisCluster):
    """The cluster client, keeping the URL it was opened with: a reader that blocks
    (own_connection) opens a client of its own from it."""

    url: str = ""


def redis_client(url: str, cluster: bool = False) -> Redis:
    """A client tuned for the daemon's hot path; `cluster`: a Redis Cluster's.

    A blocking pool: an application awaiting a thousand results at once queues
    for the pool's connections instead of failing with "Too many connections".
    (The cluster client's pools do not block: past MAX_CONNECTIONS on one node a
    call fails as unavailable, and its caller pauses and tries again.)
    """
    if cluster:
        return _cluster_client(url, MAX_CONNECTIONS)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S, **_OPTIONS
    )
    return Redis.from_pool(pool)  # closing the client closes its pool


def _cluster_client(url: str, max_connections: int) -> Redis:
    client = cast(_Cluster, _Cluster.from_url(url, max_connections=max_connections, **_OPTIONS))
    client.url = url
    # The same commands as Redis (see the module's docstring); mypy cannot know it.
    return cast(Redis, client)


def is_cluster(redis: Redis) -> bool:
    """Whether this client is a Redis Cluster's."""
    return isinstance(redis, RedisCluster)


def own_connection(redis: Redis) -> Redis:
    """A client of the same server, with the same options, on a pool of one connection
    of its own: for a reader that blocks in Redis (a live feed's XREAD) for as long
    as someone listens, so that it never holds a connection of the shared pool (at
    most 100 by default) that requests need. Close it with aclose().

    On a cluster: a cluster client of its own, one connection per node (the
    reader's keys are all in one slot, so it uses one)."""
    if is_cluster(redis):
        return _cluster_client(cast(_Cluster, redis).url, 1)
    pool = redis.connection_pool
    own = ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **pool.connection_kwargs
    )
    return Redis.from_pool(own)  # closing the client closes its pool


def node_client(cluster: RedisCluster, host: str, port: int) -> Redis:
    """A plain client of one node of this cluster (its URL's credentials and options):
    for a sharded subscription, which lives on the node serving its slot."""
    url = cluster.url if isinstance(cluster, _Cluster) else f"redis://{host}:{port}/0"
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    node = urlunsplit(parts._replace(netloc=f"{credentials}{at}{host}:{port}"))
    return redis_client(node)
