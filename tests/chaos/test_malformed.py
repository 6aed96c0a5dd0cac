"""Malformed jobs and foreign stream entries written straight into Redis under load.

Redis is shared, so runner must treat what it reads there as untrusted: a job
hash with a field missing or not a number, a key of another type in a job's
name, due and lease set members pointing at them, stream entries runner never
wrote. None of it may stop a daemon or stay queued for ever; each bad job ends
failed with the bad field named, or set aside under a `{prefix}:dead` key; each
bad entry leaves the stream (set aside when Postgres cannot take it); and the
normal jobs around them keep a whole history.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.load import LoadGenerator
from tests.chaos.malformed import (
    BadEntry,
    BadJob,
    dead_letters,
    plant_bad_entries,
    plant_bad_jobs,
    where_bad_job_is,
)
from tests.chaos.profile import profile

PROFILE = profile("malformed")
ROUNDS = max(2, int(PROFILE.seconds // 10))
SETTLE_S = 20.0


async def _plant(cluster: Cluster, jobs: list[BadJob], entries: list[BadEntry]) -> None:
    """Plant bad data in rounds spread over the load, so normal jobs run before,
    between and after."""
    for _ in range(ROUNDS):
        await asyncio.sleep(PROFILE.seconds / (ROUNDS + 1))
        jobs += await plant_bad_jobs(cluster.redis, cluster.keys)
        entries += await plant_bad_entries(cluster.redis, cluster.keys)


async def _unhandled(cluster: Cluster, jobs: list[BadJob]) -> list[str]:
    """What is still wrong with the bad jobs once they had SETTLE_S to be handled."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        dead, _ = await dead_letters(cluster.redis, cluster.keys)
        wrong = [
            problem
            for job in jobs
            if (problem := await where_bad_job_is(cluster.redis, cluster.keys, job, dead))
        ]
        if not wrong or time.monotonic() > deadline:
            return wrong
        await asyncio.sleep(0.5)


@pytest.mark.timeout(PROFILE.timeout + SETTLE_S)
async def test_malformed_data_stops_no_daemon_and_stays_nowhere(open_cluster: OpenCluster) -> None:
    """Bad job hashes (in the due sets, and in the lease set with expired leases for the
    reaper), keys of the wrong type, and foreign stream entries, planted twice amid
    normal load: every daemon lives and runs the normal jobs after them; each bad job
    leaves the due and lease sets, failed naming its flaw or set aside; each foreign
    entry leaves the stream, and those Postgres cannot take are set aside; the normal
    jobs pass the audit."""
    cluster = await open_cluster(daemons=PROFILE.daemons)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(7)
    )
    jobs: list[BadJob] = []
    entries: list[BadEntry] = []
    await asyncio.gather(load.run(), _plant(cluster, jobs, entries))
    unhandled = await _unhandled(cluster, jobs)
    verdict = await cluster.finish(load.accepted)
    dead_jobs, dead_entries = await dead_letters(cluster.redis, cluster.keys)
    stuck_entries = [
        f"{entry.id} ({entry.flaw})"
        for entry in entries
        if not entry.writable and entry.id not in dead_entries
    ]
    pending = (await cluster.redis.xpending(cluster.keys.events, "recorder"))["pending"]
    figures.record(
        "malformed",
        **verdict.figures(),
        bad_jobs=len(jobs),
        bad_jobs_set_aside=len(dead_jobs & {job.id for job in jobs}),
        bad_jobs_unhandled=len(unhandled),
        bad_entries=len(entries),
        bad_entries_set_aside=len(dead_entries & {entry.id for entry in entries}),
        errors=dict(verdict.health.errors),
    )
    problems = verdict.problems()
    if unhandled:
        problems.append(f"bad jobs not handled ({len(unhandled)}):\n" + "\n".join(unhandled))
    if stuck_entries:
        problems.append("foreign stream entries not set aside: " + ", ".join(stuck_entries))
    if pending:
        problems.append(f"{pending} stream entries still pending in the recorder group")
    assert not problems, "\n\n".join(problems)
