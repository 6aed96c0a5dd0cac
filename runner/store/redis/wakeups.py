"""The wake and cancel channels: "a job is due at T" and "stop this running job".

The scripts publish on `{prefix}:wake` and `{prefix}:cancel` (keys.py) as they
change state; every daemon listens. On one server that is plain pub/sub
(PUBLISH, SUBSCRIBE). On a Redis Cluster, plain PUBLISH would be broadcast over
the cluster bus to every node; sharded pub/sub (SPUBLISH, SSUBSCRIBE, Redis 7+
and Valkey) keeps each message on the shard that serves the channel's slot,
which is the `{prefix}` slot the scripts run in. The listener subscribes on the
primary serving that slot now; when it goes (killed, failed over, slot moved:
the server then says "sunsubscribe") the listen ends with an error, and the
caller subscribes again, on whichever node serves the slot by then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError, RedisError

from runner.store.redis.connect import is_cluster, node_client
from runner.store.redis.keys import Keys


def publish_command(redis: Redis) -> str:
    """What the scripts publish with: SPUBLISH on a cluster, PUBLISH elsewhere (Redis
    6.2 has no SPUBLISH)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


def _int(value: object) -> int | None:
    try:
        return int(cast(str, value))  # anyone may publish anything
    except (TypeError, ValueError):
        return None


async def listen(
    redis: Redis,
    keys: Keys,
    on_due: Callable[[int | None], None],
    on_cancel: Callable[[str], None] | None,
) -> None:
    """Call `on_due(ms)` for each wake-up message and `on_cancel(job_id)` for each
    running job cancelled by request, until the connection fails.

    `on_due(None)` once subscribed (a message may have been missed before) and
    for a message that is not a time: anyone may publish on the channel.
    """
    channels = [keys.wake_channel] + ([keys.cancel_channel] if on_cancel else [])
    if is_cluster(redis):
        await _listen_sharded(cast(RedisCluster, redis), channels, keys, on_due, on_cancel)
        return
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(*channels)
        on_due(None)
        await _read(pubsub, keys, on_due, on_cancel)
    finally:
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()


async def _listen_sharded(
    cluster: RedisCluster,
    channels: list[str],
    keys: Keys,
    on_due: Callable[[int | None], None],
    on_cancel: Callable[[str], None] | None,
) -> None:
    """SSUBSCRIBE on the primary that serves the channels' slot now, by a client of
    that node alone (the cluster client's own pub/sub moves channels about on its
    own; here a moved slot ends the listen, and the caller starts again)."""
    await cluster.initialize()
    await cluster.nodes_manager.initialize()  # the slot's owner now, after a failover
    node = cluster.get_node_from_key(channels[0])
    if node is None:
        raise ConnectionError(f"no node serves the slot of {channels[0]} now")
    client = node_client(cluster, node.host, int(node.port))
    pubsub = client.pubsub(ignore_subscribe_messages=False)
    try:
        await pubsub.ssubscribe(*channels)
        on_due(None)
        await _read(pubsub, keys, on_due, on_cancel)
    finally:
        with contextlib.suppress(RedisError, OSError):
            await pubsub.aclose()
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()


async def _read(
    pubsub: PubSub,
    keys: Keys,
    on_due: Callable[[int | None], None],
    on_cancel: Callable[[str], None] | None,
) -> None:
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is None:
            continue
        kind = message.get("type")
        if kind == "sunsubscribe":
            raise ConnectionError("the node no longer serves the channels' slot")
        if kind not in ("message", "smessage"):
            continue
        data = message.get("data")
        if on_cancel is not None and message.get("channel") == keys.cancel_channel:
            if isinstance(data, str):
                on_cancel(data)
        else:
            on_due(_int(data))
