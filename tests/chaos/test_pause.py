"""A daemon frozen (SIGSTOP) for longer than its leases, then thawed (SIGCONT), under load.

This is the fence's test: while the daemon is frozen, the others reap its
leases and run its jobs again; when it wakes, it still holds those jobs and
finishes them. Its outcomes must be refused (fenced by owner and attempt), so
no job's newer state is overwritten, and the daemon must carry on as if
nothing happened.
"""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from tests.chaos import figures
from tests.chaos.audit import read_postgres, why_again
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.faults import freeze_a_daemon
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("pause")
UP_BETWEEN_S = (1.0, 3.0)
LEASE_S = 2.0  # the cluster's lease_ttl
# A lease renewed just before the freeze lives LEASE_S more; the others' reapers look
# every third of a lease. A shorter freeze may end before any lease is reaped.
SHORTEST_FREEZE_S = LEASE_S + LEASE_S / 3 + 0.5


def _fenced(cluster: Cluster) -> list[tuple[str, str]]:
    """(daemon id, job id) of each outcome a daemon saw fenced off, from its log."""
    found: list[tuple[str, str]] = []
    for _, run in cluster.fleet.runs():
        lines = run.lines()[0]
        [daemon] = {line["daemon"] for line in lines if line.get("event") == "daemon ready"}
        found.extend(
            (daemon, str(line["job_id"]))
            for line in lines
            if line.get("event") == "outcome fenced off: lease lost"
        )
    return found


async def _unexplained_fences(cluster: Cluster, fenced: list[tuple[str, str]]) -> list[str]:
    """The fenced outcomes whose job's history does not show the lease they lost: a
    claim by the fenced daemon followed at once by that lease's expiry (and not by the
    outcome the daemon sent late)."""
    _, histories = await read_postgres(cluster.database_url, [job_id for _, job_id in fenced])
    unexplained = []
    for daemon, job_id in fenced:
        history = histories.get(job_id, [])
        if not any(
            claim["to_state"] == "running"
            and claim["daemon"] == daemon
            and why_again(after) == "lease expired"
            for claim, after in itertools.pairwise(history)
        ):
            steps = [(e["seq"], e["from_state"], e["to_state"], e["daemon"]) for e in history]
            unexplained.append(f"{job_id} fenced off in {daemon}, history {steps}")
    return unexplained


async def _freeze_repeatedly(cluster: Cluster, rng: random.Random) -> None:
    for _ in range(PROFILE.outages):
        await asyncio.sleep(rng.uniform(*UP_BETWEEN_S))
        await freeze_a_daemon(cluster, rng, PROFILE.outage_s)


@pytest.mark.timeout(PROFILE.timeout)
async def test_a_frozen_daemon_is_fenced_off_and_carries_on(open_cluster: OpenCluster) -> None:
    """Daemons frozen past their 2 s leases and thawed: no daemon fails; the frozen
    daemon's jobs run again elsewhere (explained by the expired lease), what it finishes
    late is fenced off (at least one such outcome, each one's job showing the lease it
    lost right after its claim, not the late outcome), and the audit finds every job
    terminal with a legal history and no execution without a claim."""
    assert PROFILE.outage_s >= SHORTEST_FREEZE_S, (
        f"RUNNER_CHAOS_OUTAGE_S={PROFILE.outage_s} cannot outlast a {LEASE_S} s lease; "
        f"use at least {SHORTEST_FREEZE_S:.1f}"
    )
    cluster = await open_cluster(daemons=PROFILE.daemons, lease_ttl=f"{LEASE_S:g}s")
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(9)
    )
    await asyncio.gather(load.run(), _freeze_repeatedly(cluster, random.Random(10)))
    verdict = await cluster.finish(load.accepted)
    fenced = _fenced(cluster)
    figures.record(
        "pause",
        **verdict.figures(),
        pauses=PROFILE.outages,
        paused_s=PROFILE.outage_s,
        outcomes_fenced_off=len(fenced),
        reruns=dict(verdict.audit.reruns),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert verdict.audit.reruns["lease expired"] > 0  # the pauses did outlast leases
    assert fenced, "no thawed daemon finished a job it had lost: the fence went untested"
    unexplained = await _unexplained_fences(cluster, fenced)
    assert not unexplained, f"{len(unexplained)} of {len(fenced)}: " + "; ".join(unexplained[:5])
