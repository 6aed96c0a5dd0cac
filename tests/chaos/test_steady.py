"""Several daemons sharing one Redis and one Postgres under steady mixed load, no faults.

The baseline for every other scenario: if jobs are lost, histories gapped or a
daemon dies here, no fault is needed to explain it. The short run also runs on
Debian's redis-server and PostgreSQL 15 when they are installed.
"""

from __future__ import annotations

import random

import pytest

from tests.chaos import figures
from tests.chaos.audit import read_hashes
from tests.chaos.conftest import OpenCluster
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import is_long, profile
from tests.chaos.servers import debian_available, servers_kind

PROFILE = profile("steady")


def _server_kinds() -> list[str]:
    """The servers of this run; a short run on the embedded ones also runs once on
    Debian's when they are installed (`make debian-servers`)."""
    kind = servers_kind()
    if kind == "embedded" and not is_long() and debian_available():
        return ["embedded", "debian"]
    return [kind]


# What each task ends as when nothing goes wrong around it.
EXPECTED = {
    "async_work": ("succeeded", 1),
    "io_work": ("succeeded", 1),
    "cpu_work": ("succeeded", 1),
    "always_fails": ("failed", 3),
}


@pytest.mark.timeout(PROFILE.timeout)
@pytest.mark.parametrize("servers", _server_kinds())
async def test_steady_load_loses_nothing_and_stops_no_daemon(
    open_cluster: OpenCluster, servers: str
) -> None:
    """Mixed async, io and cpu work, delayed jobs, flaky jobs that a retry fixes and jobs
    that always fail: every daemon lives until a SIGTERM stops it with exit code 0, no
    service fails, and the audit finds every accepted job terminal, its state agreeing
    in Redis and Postgres, its history whole. With no faults every job ends as its task
    says, and nothing runs again but a retry after a task failure."""
    cluster = await open_cluster(daemons=PROFILE.daemons, servers=servers)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(1)
    )
    await load.run()
    verdict = await cluster.finish(load.accepted)
    figures.record(
        f"steady[{servers}]",
        **verdict.figures(),
        rate=round(load.achieved_rate),
        errors=dict(verdict.health.errors),
    )
    verdict.assert_clean()
    assert not load.failures, load.failures
    assert len(load.accepted) == PROFILE.jobs
    assert set(verdict.audit.reruns) <= {"retry after a task failure"}, verdict.audit.reruns
    live = await read_hashes(cluster.redis, cluster.keys, load.accepted)
    wrong = [
        (job_id, task, job.get("state"), job.get("attempt"), job.get("error"))
        for job_id, job in live.items()
        if not _as_expected(task := load.tasks[job_id], job)
    ]
    assert not wrong, wrong[:10]


def _as_expected(task: str, job: dict[str, str]) -> bool:
    if task.startswith("flaky"):
        return job.get("state") == "succeeded"
    return (job.get("state"), int(job.get("attempt", 0))) == EXPECTED[task]
