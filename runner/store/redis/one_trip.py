"""Several queues' script calls in one round trip.

A daemon that serves several queues claims from each and finishes in each: one
script call a queue, since a script sees one queue's slot. On one server those
calls go in one pipeline (one round trip, where concurrent calls would each take
a connection and a trip); on a Redis Cluster the queues' slots are on different
nodes, so the calls go at once, one a node. A pipeline sends EVALSHA alone: a
script the server does not know (restarted, flushed) is answered NOSCRIPT, and
that call alone is made again through its script object, which loads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from runner.store.redis.connect import is_cluster


class ScriptCall(NamedTuple):
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[Any]


async def run_calls(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Each call's reply, in order; the first error a call met is raised."""
    if len(calls) == 1:  # the common case, kept as cheap as a plain call
        return [await calls[0].script(keys=calls[0].keys, args=calls[0].args)]
    if is_cluster(redis):
        return list(await asyncio.gather(*(c.script(keys=c.keys, args=c.args) for c in calls)))
    async with redis.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        replies = await pipe.execute(raise_on_error=False)
    for n, (call, reply) in enumerate(zip(calls, replies, strict=True)):
        if isinstance(reply, NoScriptError):
            replies[n] = await call.script(keys=call.keys, args=call.args)
        elif isinstance(reply, Exception):
            raise reply
    return list(replies)
