"""PostgreSQL stopped twice under load while several daemons keep working.

Jobs need only Redis to run; their transitions wait in the stream while
Postgres is away, and the recorders write them once it is back. Nothing may be
lost, written twice with a different meaning, or left with a gap.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.faults import stop_postgres_for
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("postgres")
UP_BETWEEN_S = 2.0


async def _outages(cluster: Cluster, count: int, seconds: float) -> float:
    """Stop Postgres `count` times for `seconds` each; the total time it was down."""
    down = 0.0
    for _ in range(count):
        await asyncio.sleep(UP_BETWEEN_S)
        await stop_postgres_for(cluster, seconds)
        down += seconds
    return down


@pytest.mark.timeout(PROFILE.timeout)
async def test_postgres_outages_lose_no_transition(open_cluster: OpenCluster) -> None:
    """Postgres stopped and started again, twice, under mixed load: no daemon fails, the
    work goes on meanwhile, and afterwards every accepted job is terminal with its whole
    history in Postgres, agreeing with Redis."""
    cluster = await open_cluster(daemons=PROFILE.daemons)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(4)
    )
    _, down = await asyncio.gather(load.run(), _outages(cluster, PROFILE.outages, PROFILE.outage_s))
    verdict = await cluster.finish(load.accepted, drain_timeout=120)
    figures.record(
        "postgres outage",
        **verdict.figures(),
        outages=PROFILE.outages,
        postgres_down_s=down,
        rate=round(load.achieved_rate),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert not load.failures, load.failures  # enqueueing needs Redis alone
    assert len(load.accepted) == PROFILE.jobs
