"""The layout of job hashes in Redis, and bringing older ones up to it at start.

Job hashes store one-letter field names (store/redis/fields.py). Hashes written by an
earlier runner, with full names, are renamed by the first daemon that starts
(rename_fields.lua, in batches over a SCAN of the job keys); `{prefix}:format`
then records that the keyspace is done, so later starts skip the scan. Every
daemon and client of a deployment must run the same layout: upgrade them all
at once.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from runner.store.failures import on_redis
from runner.store.redis.keys import Keys
from runner.store.redis.scripts import Scripts

FORMAT = "2"  # 1 (no key): full field names
BATCH = 500


@on_redis
async def upgrade_job_hashes(redis: Redis, keys: Keys, scripts: Scripts) -> int:
    """Rename the fields of job hashes in the older layout; how many were renamed."""
    if await redis.get(keys.hash_format) == FORMAT:
        return 0
    renamed, batch = 0, []
    prefix = keys.job_prefix
    async for key in redis.scan_iter(match=prefix + "*", count=1000):
        batch.append(key[len(prefix) :])
        if len(batch) >= BATCH:
            renamed += await _rename(scripts, prefix, batch)
            batch = []
    if batch:
        renamed += await _rename(scripts, prefix, batch)
    await redis.set(keys.hash_format, FORMAT)
    return renamed


async def _rename(scripts: Scripts, prefix: str, ids: list[str]) -> int:
    count: int = await scripts.rename_fields(keys=[prefix], args=[orjson.dumps(ids).decode()])
    return count
