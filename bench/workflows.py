"""`python -m bench.workflows`: what a dependency graph costs against the same number
of independent jobs, end to end, in one run.

A graph of 10,000 no-op nodes, a chain of 100 groups of 100 (every node of a group
waits for every node of the group before it), is enqueued in one call
(Client.enqueue_workflow); then one `runner run --drain` daemon runs it to the end
and records every transition. The same daemon drains 10,000 independent no-op jobs
(Client.enqueue_many), round after round, alternated. Figures per run: the enqueue's
wall time, the drain's (daemon ready to daemon stopped), their sum, and the time
Redis spent on the drain's commands (INFO commandstats).
Target (issue): the graph end to end within 2x of the independent jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.limits import _config, _redis_usec
from bench.queues import Place, _drain, _flush
from bench.runner_daemon import REPO
from bench.servers import own_database, private_servers
from runner import chain, group, step
from runner.client.client import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers

GROUPS, WIDTH = 100, 100
ROUNDS = 3


@dataclass
class GraphFigures:
    nodes: int
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def median(self, kind: str, what: str) -> float:
        return float(statistics.median(run[what] for run in self.runs[kind]))

    def ratio(self) -> float:
        """The graph's end-to-end time over the independent jobs' (< 2 is the target)."""
        return self.median("graph", "total_s") / self.median("independent", "total_s")

    def overhead_us(self) -> float:
        """What a node adds, end to end, to an independent job (µs)."""
        extra = self.median("graph", "total_s") - self.median("independent", "total_s")
        return extra / self.nodes * 1e6

    def targets(self) -> dict[str, bool]:
        return {"a 10,000-node graph within 2x of 10,000 independent jobs end to end":
                self.ratio() <= 2.0}  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "runs": self.runs, "ratio": self.ratio(),
                "overhead_us_per_node": self.overhead_us()}  # fmt: skip


def render(figures: GraphFigures) -> str:
    lines = [f"a chain of {GROUPS} groups of {WIDTH} against {figures.nodes:,} independent "
             "jobs (no-op bodies, medians)",
             "  run           enqueue s   drain s   total s   jobs/s   redis s"]  # fmt: skip
    for kind in ("independent", "graph"):
        total, redis = figures.median(kind, "total_s"), figures.median(kind, "redis_s")
        lines.append(f"  {kind:<12} {figures.median(kind, 'enqueue_s'):>9.2f} "
                     f"{figures.median(kind, 'drain_s'):>9.2f} {total:>9.2f} "
                     f"{figures.nodes / total:>8,.0f} {redis:>9.2f}")  # fmt: skip
    lines.append(f"  graph / independent, end to end: {figures.ratio():.2f}x; "
                 f"{figures.overhead_us():.0f} µs more a node")  # fmt: skip
    for name, met in figures.targets().items():
        lines.append(f"  {'met' if met else 'MISSED'}: {name}")
    return "\n".join(lines)


async def _enqueue(config: Path, kind: str) -> float:
    async with await Client.connect(load_settings(config, env={})) as client:
        started = time.perf_counter()
        if kind == "graph":
            flow = chain(group(step("noop", f"g{g}") for _ in range(WIDTH)) for g in range(GROUPS))
            await client.enqueue_workflow(flow)
        else:
            await client.enqueue_many(
                [client.new_job("noop", [f"g{n // WIDTH}"]) for n in range(GROUPS * WIDTH)]
            )
        return time.perf_counter() - started


def _one_run(servers: EmbeddedServers, folder: Path, kind: str) -> dict[str, float]:
    assert servers.redis_url is not None
    place = Place(servers.redis_url, own_database(servers.database_url, "workflows"), folder, REPO,
                  servers=servers)  # fmt: skip
    asyncio.run(_flush(place.redis_url))
    prefix = f"bench-w-{kind}"
    log_file = folder / f"{prefix}-{time.monotonic_ns()}.log"
    config = _config(place, prefix, log_file, {})
    enqueue = asyncio.run(_enqueue(config, kind))
    before = asyncio.run(_redis_usec(place.redis_url))
    drain, _ = _drain(config, log_file, REPO)
    spent = asyncio.run(_redis_usec(place.redis_url)) - before
    return {"enqueue_s": round(enqueue, 3), "drain_s": round(drain, 3),
            "total_s": round(enqueue + drain, 3), "redis_s": round(spent / 1e6, 3)}  # fmt: skip


def measure(servers: EmbeddedServers, folder: Path, rounds: int = ROUNDS) -> GraphFigures:
    figures = GraphFigures(GROUPS * WIDTH, {"independent": [], "graph": []})
    for n in range(rounds):
        for kind in ("independent", "graph"):
            run = _one_run(servers, folder, kind)
            figures.runs[kind].append(run)
            print(f"  round {n + 1} {kind:<12} enqueue {run['enqueue_s']:.2f} s  drain "
                  f"{run['drain_s']:.2f} s  redis {run['redis_s']:.2f} s", flush=True)  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with private_servers("workflows") as (servers, folder):
        figures = measure(servers, folder, args.rounds)
    print(render(figures))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
