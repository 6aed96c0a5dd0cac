"""SIGKILL a random daemon every few seconds under load, and start it again.

A killed daemon's running jobs hold leases nobody renews; another daemon reaps
them (a retry, or failed when attempts are spent), and the recorder entries it
read but never acknowledged are taken over. Nothing may be lost or recorded
with a gap, and every job that ran twice must say why.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.faults import kill_a_daemon
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("kill")
KILL_EVERY_S = (2.0, 5.0)


async def _kill_repeatedly(cluster: Cluster, kills: int, rng: random.Random) -> None:
    """Kill `kills` times, every 2-5 s, the last kills near the end of the load: the
    time to drain after the last kill is then the time to recover from it."""
    mean = sum(KILL_EVERY_S) / 2
    await asyncio.sleep(max(2.0, PROFILE.seconds - kills * mean - 2))
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*KILL_EVERY_S))
        await kill_a_daemon(cluster, rng)


@pytest.mark.timeout(PROFILE.timeout + PROFILE.kills[1] * KILL_EVERY_S[1])
async def test_sigkilled_daemons_lose_no_job_and_no_transition(open_cluster: OpenCluster) -> None:
    """Daemons killed with SIGKILL mid-work and restarted: the others never fail; every
    accepted job ends terminal with a whole history; each re-run is explained by an
    expired lease (or a task failure's retry); killed daemons leave no cpu worker
    behind; and the work drains within a bounded time after the last kill."""
    rng = random.Random(2)
    cluster = await open_cluster(daemons=PROFILE.daemons)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(3)
    )
    kills = rng.randint(*PROFILE.kills)
    await asyncio.gather(load.run(), _kill_repeatedly(cluster, kills, rng))
    verdict = await cluster.finish(load.accepted, drain_timeout=120)
    last_kill = cluster.fleet.last_kill or time.monotonic()
    figures.record(
        "kill",
        **verdict.figures(),
        kills=cluster.fleet.kills,
        drain_after_last_kill_s=round(verdict.drain.ended - last_kill, 1),
        reruns=dict(verdict.audit.reruns),
        rate=round(load.achieved_rate),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert cluster.fleet.kills == kills
    assert verdict.audit.reruns["lease expired"] > 0  # the kills did hit running jobs
    assert len(load.accepted) == PROFILE.jobs
