"""`python -m bench.wait_replicas`: what `[redis] wait_replicas = 1` costs, on a real
Redis Cluster of 3 primaries and 3 replicas (Debian's redis-server, as the tests
start it: tests/redis_cluster.py).

Two runs of the same work, each under a key prefix of its own, with
wait_replicas 0 and 1: enqueues one call at a time through the public Client
(an application's request handler: the WAIT's round trip is all latency), then
in batches (enqueue_many), then a daemon in this process runs the jobs (no-op)
until none is left, its outcomes written in batches, each followed by WAIT.
On loopback a replica answers WAIT in well under a millisecond; across hosts
add the network's round trip to each enqueue and each batch of outcomes.

    .venv/bin/python -m bench.wait_replicas     # on private servers of its own
    make bench                                  # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.servers import private_servers
from runner import Client
from runner.config.settings import Settings, TaskSettings
from runner.daemon.supervisor import Daemon
from runner.logs import configure_logging
from runner.servers.connect import Connections
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.store import PgStore
from runner.tasks import TaskRegistry
from tests.redis_cluster import start_cluster

JOBS = 20_000
SINGLE = 2_000  # enqueues made one call at a time
BATCH = 100


@dataclass
class Run:
    wait_replicas: int
    single_enqueues_per_s: float
    batch_enqueues_per_s: float
    jobs_per_s: float  # run by the daemon, from the first claim to the last record


@dataclass
class WaitFigures:
    jobs: int
    runs: list[Run]

    def targets(self) -> dict[str, bool]:
        return {}  # figures to read, no target: the cost depends on the network

    def as_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "runs": [asdict(run) for run in self.runs]}


async def _run(base: Settings, wait_replicas: int, jobs: int) -> Run:
    settings = Settings(
        redis_url=base.redis_url, redis_cluster=True, database_url=base.database_url,
        key_prefix=f"bench-wait-{secrets.token_hex(3)}", tasks=base.tasks,
        wait_replicas=wait_replicas, source="bench",
    )  # fmt: skip
    async with await Client.connect(settings) as client:
        started = time.perf_counter()
        for _ in range(SINGLE):
            await client.enqueue("noop")
        single = SINGLE / (time.perf_counter() - started)
        made = [client.new_job("noop") for _ in range(jobs)]
        started = time.perf_counter()
        for i in range(0, jobs, BATCH):
            await client.enqueue_many(made[i : i + BATCH])
        batch = jobs / (time.perf_counter() - started)
    assert settings.redis_url and settings.database_url
    conns = await Connections.open(settings, settings.redis_url, settings.database_url)
    try:
        daemon = Daemon(settings, TaskRegistry.from_settings(settings), conns)
        started = time.perf_counter()
        await daemon.serve(asyncio.Event(), drain=True)
        ran = (jobs + SINGLE) / (time.perf_counter() - started)
    finally:
        await conns.close()
    return Run(wait_replicas, round(single), round(batch), round(ran))


async def _migrate(database_url: str) -> None:
    pg = await PgStore.connect(database_url)
    try:
        await pg.migrate()
    finally:
        await pg.close()


def measure(servers: EmbeddedServers, jobs: int = JOBS) -> WaitFigures:
    asyncio.run(_migrate(servers.database_url))
    configure_logging("warning", "json")  # the in-process daemon's lines cost time: only warnings
    print(f"measuring wait_replicas 0 and 1 on a 3+3 Redis Cluster ({jobs:,} jobs) ...", flush=True)
    cluster = start_cluster()
    try:
        noop = TaskSettings(name="noop", target="bench.tasks:noop", kind="async")
        base = Settings(
            redis_url=cluster.url, database_url=servers.database_url, tasks={"noop": noop},
            source="bench",
        )  # fmt: skip
        runs = [asyncio.run(_run(base, wait, jobs)) for wait in (0, 1)]
    finally:
        cluster.close()
    return WaitFigures(jobs, runs)


def render(figures: WaitFigures) -> str:
    lines = [
        f"wait_replicas on a 3+3 Redis Cluster (loopback; {SINGLE:,} single enqueues, "
        f"{figures.jobs:,} in batches of {BATCH}, then a daemon runs them all)",
        "  wait_replicas   enqueue/s (one a call)   enqueue/s (batches)   jobs/s (daemon)",
    ]
    for run in figures.runs:
        lines.append(
            f"  {run.wait_replicas:>13}   {run.single_enqueues_per_s:>22,.0f}"
            f"   {run.batch_enqueues_per_s:>19,.0f}   {run.jobs_per_s:>15,.0f}"
        )
    if len(figures.runs) == 2 and figures.runs[0].jobs_per_s:
        off, on = figures.runs
        single = on.single_enqueues_per_s / off.single_enqueues_per_s
        batches = on.batch_enqueues_per_s / off.batch_enqueues_per_s
        lines.append(
            f"  with WAIT: enqueue one a call {single:.2f}x, batches {batches:.2f}x, "
            f"daemon {on.jobs_per_s / off.jobs_per_s:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wait_replicas", description=__doc__)
    parser.add_argument("--jobs", type=int, default=JOBS)
    args = parser.parse_args(argv)
    with private_servers("wait-replicas", redis=False) as (servers, _):
        figures = measure(servers, args.jobs)
    print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
