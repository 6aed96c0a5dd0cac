"""`[redis] wait_replicas`: a write acknowledged only once replicas hold it.

Redis replicates asynchronously: a primary that dies may take with it writes it
had already acknowledged. With `wait_replicas = N`, the writes that matter (an
enqueue, a batch of outcomes) are followed by `WAIT N timeout` on the same
connection (WAIT counts the replicas that hold that connection's writes), sent in
the same round trip as the script. The reply says how many replicas confirmed
within WAIT_TIMEOUT_MS: the store raises NotReplicated for an enqueue that fell
short (its jobs exist on the primary, unconfirmed), and logs a batch of outcomes
that did (`replicas_behind`: a lost outcome means the job runs again).

On a cluster, WAIT goes to the node the script's keys hash to. A failover in the
middle of the round trip may send the retried script elsewhere: then WAIT's
answer does not count, as if no replica had confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from runner.errors import NotReplicated
from runner.logs import get_logger
from runner.store.redis.connect import is_cluster

WAIT_TIMEOUT_MS = 1000

log = get_logger()


async def run_replicated(
    redis: Redis, script: AsyncScript, keys: Sequence[str], args: Sequence[Any], replicas: int
) -> tuple[Any, int]:
    """The script's reply and how many replicas confirmed what it wrote (at most
    `replicas`: WAIT returns once that many have). A server that lost the script
    gets it again."""
    for _ in range(2):
        reply, acked, confirmed = await _evalsha_wait(redis, script, keys, args, replicas)
        if isinstance(reply, NoScriptError):
            await redis.script_load(script.script)
            continue
        if isinstance(reply, Exception):
            raise reply
        return reply, acked if confirmed else 0
    raise NoScriptError("the server refused to keep the script")


def not_replicated(job_ids: list[str], wanted: int, acked: int) -> NotReplicated:
    first = job_ids[0] + (f" and {len(job_ids) - 1} more" if len(job_ids) > 1 else "")
    return NotReplicated(
        f"job {first} enqueued on the Redis primary, but {acked} of the {wanted} replicas "
        f"that [redis] wait_replicas asks for confirmed it within {WAIT_TIMEOUT_MS} ms: a "
        "failover now could lose it; enqueue again with the same job id to be sure",
        job_ids,
    )


def note_behind(what: str, wanted: int, acked: int) -> None:
    """A write that stands unconfirmed, for the operator (replicas down or lagging)."""
    log.warning("replicas_behind", write=what, wanted=wanted, acked=acked,
                timeout_ms=WAIT_TIMEOUT_MS)  # fmt: skip


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
