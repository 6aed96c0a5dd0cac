"""Operator requests racing the daemons: jobs claimed by two daemon processes while the
test pauses, resumes, updates, cancels, retries and deletes random ones as fast as
one client can.

Afterwards every job's Redis state, runner_jobs row and history agree, each
history is a legal path through the transition table, the client's events are
exactly the requests that applied, and no job was claimed after a pause, cancel
or delete request for it had returned (unless a resume or retry came later).
The short run takes 10,000 jobs; `make chaos` (RUNNER_CHAOS=long) takes 40,000.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence

import pytest

from runner.states import TERMINAL
from tests.chaos import figures
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import OpenCluster
from tests.chaos.control_audit import audit_control
from tests.chaos.health import check_health
from tests.chaos.load import Kind, LoadGenerator
from tests.chaos.profile import profile
from tests.chaos.requests import Requester
from tests.unrecorded import unrecorded

PROFILE = profile("control")
SETTLE_S = 60.0
TASKS = {
    "echo": {"target": "tests.tasks:echo", "kind": "async"},
    "nap": {"target": "tests.tasks:sleep_async", "kind": "async", "timeout": "5s"},
}
# Mostly no-op jobs due at once, some due a moment later (there is time to pause or
# update them before they start), some that run long enough to be cancelled running.
MIX = (
    Kind("echo", 6, lambda rng, job_id: [job_id]),
    Kind("echo", 2, lambda rng, job_id: [job_id], delay_s=(0.1, 1.5)),
    Kind("nap", 2, lambda rng, job_id: [round(rng.uniform(0.02, 0.2), 3)]),
)


async def _settle(cluster: Cluster, requester: Requester, ids: Sequence[str]) -> float:
    """Resume whatever is paused, then wait until every job that was not deleted has
    ended and the recorder caught up (the stream is empty); the seconds it took."""
    started = time.monotonic()
    store = cluster.client.store
    left: Counter[str] = Counter()
    while time.monotonic() - started < SETTLE_S:
        states = await store.job_states([i for i in ids if i not in requester.deleted])
        paused = [job_id for job_id, state in states.items() if state == "paused"]
        for start in range(0, len(paused), 500):
            await requester.request("resume", paused[start : start + 500])
        left = Counter(state for state in states.values() if state not in TERMINAL)
        if not left and await unrecorded(cluster.redis, cluster.keys) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError(f"not settled after {SETTLE_S}s: {dict(left)}")


@pytest.mark.timeout(PROFILE.timeout)
async def test_requests_racing_two_daemons_keep_every_job_consistent(
    open_cluster: OpenCluster,
) -> None:
    """Jobs enqueued at a steady rate and claimed by two daemons while random requests
    hit random jobs (mostly recent ones, waiting or running). Once everything paused is
    resumed and the work drained: Redis, runner_jobs and the history agree for every
    job (deleted ones gone from Redis, recorded as deleted), every history is a legal
    path through TRANSITIONS, each applied request is one event in order, no claim
    follows a returned pause, cancel or delete without a resume or retry in between, no
    job started more often than it was claimed, and both daemons stop cleanly."""
    cluster = await open_cluster(daemons=PROFILE.daemons, extra_tasks=TASKS)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(21), mix=MIX
    )
    requester = Requester(cluster.client, random.Random(22), lambda: load.accepted)
    started = time.monotonic()
    racing = asyncio.create_task(requester.run())
    await load.run()
    await asyncio.sleep(1.5)  # the last delayed jobs fall due while the requests go on
    requester.stopping = True
    await racing
    raced_s = time.monotonic() - started
    sent = sum(requester.outcomes.values())
    settle_s = await _settle(cluster, requester, load.accepted)

    starts = Counter(
        str(line.get("job_id"))
        for _, run in cluster.fleet.runs()
        for line in run.lines()[0]
        if line.get("event") == "job started"
    )
    report = await audit_control(
        cluster.redis, cluster.keys, cluster.database_url, load.accepted,
        requester.applied, cluster.client.origin, starts,
    )  # fmt: skip
    codes = await cluster.fleet.stop()
    health = check_health(cluster.fleet)
    applied = requester.counts()
    figures.record(
        "control",
        raced_s=round(raced_s, 1),
        settle_s=round(settle_s, 1),
        rounds=requester.rounds,
        requests_per_s=round(sent / raced_s),
        applied=applied,
        refused=sum(n for (_, outcome), n in requester.outcomes.items() if outcome != "applied"),
        stops_checked=report.stops_checked,
        violations=report.violations,
        **report.counts(),
    )
    assert report.violations == 0, report.describe()
    assert not health.failures, health.describe()
    assert set(codes.values()) == {0}, codes
    assert len(load.accepted) == PROFILE.jobs and not load.failures, load.failures
    assert all(applied.values()), f"some kind of request never applied: {applied}"
