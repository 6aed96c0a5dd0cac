"""Redis restarted under load, cleanly and by a crash, while several daemons work.

Redis runs with append-only persistence and `appendfsync always`, so every
write it acknowledged survives even a SIGKILL. The daemons must ride out the
gap (reconnect, reload their scripts, rejoin the stream's consumer group) and
lose nothing the client saw accepted.
"""

from __future__ import annotations

import asyncio
import random
import signal

import pytest

from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.faults import stop_redis_for
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("redis")
UP_BETWEEN_S = (2.0, 4.0)


async def _restarts(cluster: Cluster, count: int, seconds: float, rng: random.Random) -> None:
    """Stop Redis `count` times, alternately with SIGTERM and SIGKILL, for `seconds`."""
    for n in range(count):
        await asyncio.sleep(rng.uniform(*UP_BETWEEN_S))
        await stop_redis_for(cluster, seconds, signal.SIGTERM if n % 2 == 0 else signal.SIGKILL)


@pytest.mark.timeout(PROFILE.timeout)
async def test_redis_restarts_lose_no_accepted_job(open_cluster: OpenCluster) -> None:
    """Redis stopped (SIGTERM, then SIGKILL) and started on the same port and data under
    mixed load: no daemon fails, and every job the client saw accepted ends terminal
    with its whole history in Postgres, agreeing with Redis."""
    cluster = await open_cluster(daemons=PROFILE.daemons, appendfsync="always")
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(5)
    )
    await asyncio.gather(
        load.run(), _restarts(cluster, PROFILE.outages, PROFILE.outage_s, random.Random(6))
    )
    verdict = await cluster.finish(load.accepted, drain_timeout=120)
    figures.record(
        "redis restart",
        **verdict.figures(),
        restarts=PROFILE.outages,
        refused_enqueues=sum(load.failures.values()),
        rate=round(load.achieved_rate),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert len(load.accepted) == PROFILE.jobs
