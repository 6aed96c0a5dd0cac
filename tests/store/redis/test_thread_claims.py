"""An io thread's own claims (store ThreadClaims): each thread's connection and the
claim script are made once, at the daemon's start, in every thread of the pool."""

from __future__ import annotations

import asyncio
import threading

from runner.daemon.executors import ThreadExecutor
from runner.store.redis.store import RedisStore
from tests.real_servers import Servers
from tests.waiting import eventually


async def test_every_thread_warms_its_own_connection_before_its_first_claim(
    store: RedisStore, servers: Servers
) -> None:
    """in_every_thread runs the call once in each of the pool's threads; ThreadClaims
    warm opens that thread's connection and loads the script, so the thread's first
    claim finds both (and a claim of an empty queue answers: no job)."""
    claims = store.thread_claims(servers.redis_url, cluster=False)
    pool = ThreadExecutor(4, on_free=lambda: None)
    seen: list[int] = []

    def warm() -> None:
        claims.warm()
        seen.append(threading.get_ident())

    try:
        pool.in_every_thread(warm)
        await eventually(lambda: len(seen) == 4, what="a warm-up in each thread")
        assert len(set(seen)) == 4
        assert len(claims._all) == 4 and all(conn._sha for conn in claims._all)
        found = await asyncio.to_thread(
            claims.claim_one, "default", "io", 1, "d", lease_until_ms=2, aging_ms=1000
        )
        assert found is not None and found.jobs == []
        assert len(claims._all) == 5  # to_thread's own thread: not one of the pool's
    finally:
        claims.close()
        await pool.close(wait=True)
