"""Fairness between keys on three real daemons: tenant A enqueues thousands of jobs,
then tenant B 50; from the transition stream (the claims in the order Redis ran
them, each as of its time), every B job is claimed within the first 200 claims made
after B's enqueue, where first-in first-out would have made B wait for all of A
that was left.

`make test` runs 10,000 A jobs; RUNNER_FAIR_JOBS=50000 is the issue's figure."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.process import DaemonProcess
from tests.limits.shared import all_succeeded
from tests.waiting import eventually

A_JOBS = int(os.environ.get("RUNNER_FAIR_JOBS", "10000"))
B_JOBS = 50
WITHIN = 200
TASKS = {"tasks__tenant": {"target": "tests.tasks:echo", "kind": "async", "fair_key": "args.0"}}


def _claims_after_enqueue(entries: Any, b_ids: set[str]) -> tuple[list[str], int]:
    """The ids claimed, in claim order, by claims made as of B's enqueue or later (a
    claim made as of an earlier time, which Redis ran after the enqueue, could not see
    B's jobs: they were not due yet for it); and how many A jobs those claims took."""
    enqueued_at: int | None = None
    after: list[str] = []
    for _, fields in entries:
        for transition in json.loads(fields["e"]):
            job_id, to, at = transition[0], transition[3], transition[4]
            if enqueued_at is None and to == "scheduled" and job_id in b_ids:
                enqueued_at = at
            elif enqueued_at is not None and to == "running" and at >= enqueued_at:
                after.append(job_id)
    assert enqueued_at is not None, "B's enqueue is not in the stream"
    return after, sum(1 for job_id in after if job_id not in b_ids)


async def test_a_tenant_with_fifty_jobs_is_served_among_a_tenant_s_thousands(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    redis: Redis,
    keys: Keys,
) -> None:
    config = daemon_config(**TASKS, events={"keep": "10m"})
    daemons = [spawn(config) for _ in range(3)]
    for daemon in daemons:
        daemon.wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        await client.enqueue_many([client.new_job("tenant", ["a", n]) for n in range(A_JOBS)])
        b_ids = set(await client.enqueue_many(
            [client.new_job("tenant", ["b", n]) for n in range(B_JOBS)]))  # fmt: skip
        await eventually(lambda: all_succeeded(pg, A_JOBS + B_JOBS), timeout=60 + A_JOBS / 500,
                         what="every job succeeded")  # fmt: skip
    claims, a_left = _claims_after_enqueue(await redis.xrange(keys.events), b_ids)
    last_b = max(i for i, job_id in enumerate(claims) if job_id in b_ids)
    print(f"fairness: A={A_JOBS} jobs, {a_left} of them still waiting at B's enqueue; the "
          f"last of B's {B_JOBS} jobs was claim {last_b + 1} after it")  # fmt: skip
    assert a_left >= 1000, "A was nearly done before B came: the run shows nothing"
    assert last_b < WITHIN
