"""Every fault at once: kills, freezes, Postgres outages and Redis crashes, in random order.

Each other scenario isolates one fault; real incidents overlap. A daemon killed
while Postgres is down leaves stream entries only another daemon can record,
later; a Redis crash during a freeze lands the thawed daemon on a restarted
server. The promises are the same: no daemon fails, nothing is lost.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter

import pytest

from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.faults import freeze_a_daemon, kill_a_daemon, stop_postgres_for, stop_redis_for
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("storm")
BETWEEN_S = (1.0, 3.0)


async def _one_fault(cluster: Cluster, rng: random.Random) -> str:
    fault = rng.choice(("kill", "freeze", "postgres", "redis crash", "redis stop"))
    if fault == "kill":
        await kill_a_daemon(cluster, rng)
    elif fault == "freeze":
        await freeze_a_daemon(cluster, rng, rng.uniform(2.5, 4.0))
    elif fault == "postgres":
        await stop_postgres_for(cluster, rng.uniform(1.0, 4.0))
    else:
        how = signal.SIGKILL if fault == "redis crash" else signal.SIGTERM
        await stop_redis_for(cluster, rng.uniform(0.2, 2.0), how)
    return fault


async def _storm(cluster: Cluster, rng: random.Random, faults: Counter[str]) -> None:
    until = time.monotonic() + PROFILE.seconds
    while time.monotonic() < until:
        await asyncio.sleep(rng.uniform(*BETWEEN_S))
        faults[await _one_fault(cluster, rng)] += 1


@pytest.mark.timeout(PROFILE.timeout + 30)
async def test_overlapping_faults_lose_nothing_and_stop_no_daemon(
    open_cluster: OpenCluster,
) -> None:
    """A fault every 1-3 s for the whole load (a daemon SIGKILLed and restarted, or
    frozen past its leases, Postgres stopped, Redis crashed or stopped and restarted
    with `appendfsync always`): no daemon fails, and every job the client saw accepted
    is terminal with its whole history, each re-run explained."""
    cluster = await open_cluster(daemons=PROFILE.daemons, appendfsync="always")
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(11)
    )
    faults: Counter[str] = Counter()
    await asyncio.gather(load.run(), _storm(cluster, random.Random(12), faults))
    verdict = await cluster.finish(load.accepted, drain_timeout=120)
    figures.record(
        "storm",
        **verdict.figures(),
        faults=dict(faults),
        reruns=dict(verdict.audit.reruns),
        refused_enqueues=sum(load.failures.values()),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert len(load.accepted) == PROFILE.jobs
