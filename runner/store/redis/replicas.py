"""`[redis] wait_replicas`: a write acknowledged only once replicas hold it.

Redis replicates asynchronously: a primary that dies may take with it writes it
had already acknowledged. With `wait_replicas = N`, the writes that matter (an
enqueue, a batch of outcomes) are followed by `WAIT N timeout` on the same
connection (WAIT counts the replicas that hold that connection's writes), sent in
the same round trip as the script, so that the caller hears "done" only once N
replicas have the write, or once WAIT_TIMEOUT_MS has passed: a primary without
enough replicas in reach slows writes down, it does not stop them. Each write
that timed out is logged (`replicas_behind`).

On a cluster, WAIT goes to the node the script's keys hash to. A failover in the
middle of the round trip may send the retried script elsewhere: then WAIT's
answer does not count, and the write is logged as not confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from runner.logs import get_logger
from runner.store.redis.connect import is_cluster

WAIT_TIMEOUT_MS = 1000

log = get_logger()


async def run_replicated(
    redis: Redis,
    script: AsyncScript,
    keys: Sequence[str],
    args: Sequence[Any],
    *,
    replicas: int,
    what: str,
) -> Any:
    """The script's reply, once `replicas` replicas hold what it wrote (or the
    timeout passed: logged). A server that lost the script gets it again."""
    for _ in range(2):
        reply, acked, confirmed = await _evalsha_wait(redis, script, keys, args, replicas)
        if isinstance(reply, NoScriptError):
            await redis.script_load(script.script)
            continue
        if isinstance(reply, Exception):
            raise reply
        if not confirmed or acked < replicas:
            log.warning("replicas_behind", write=what, wanted=replicas, acked=acked,
                        timeout_ms=WAIT_TIMEOUT_MS)  # fmt: skip
        return reply
    raise NoScriptError(f"the server refused to keep the {what} script")


async def _evalsha_wait(
    redis: Redis, script: AsyncScript, keys: Sequence[str], args: Sequence[Any], replicas: int
) -> tuple[Any, int, bool]:
    """(the script's reply or error, replicas that acknowledged, whether WAIT ran on
    the connection that ran the script)."""
    wait: dict[str, Any] = {}
    node = None
    if is_cluster(redis):
        cluster = cast(RedisCluster, redis)
        await cluster.initialize()
        node = cluster.get_node_from_key(keys[0])
        wait["target_nodes"] = node
    async with redis.pipeline(transaction=False) as pipe:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.execute_command("WAIT", replicas, WAIT_TIMEOUT_MS, **wait)
        reply, acked = await pipe.execute(raise_on_error=False)
    confirmed = isinstance(acked, int)
    if node is not None:  # the script may have met a failover and run elsewhere
        confirmed = confirmed and cast(RedisCluster, redis).get_node_from_key(keys[0]) == node
    return reply, acked if isinstance(acked, int) else 0, confirmed
