"""`python -m bench.limits`: what a concurrency cap, a rate limit and a fair key cost
when they do not bind, in one run.

The same no-op drain as bench/queues.py (jobs enqueued first, then one `runner run
--drain` daemon empties them and records every transition), alternated round after
round: the task as it is, and the task with `concurrency = 1000000`, `rate =
"1000000/s"`, `rate_burst = 100000` (every job takes a slot and a start of the
rate, none waits) and `fair_key = "args.0"` over 10 tenants (every job waits for its
tenant's turn, which always comes at once). Figures per run: the daemon's wall time
and CPU, and the time Redis spent on the drain's commands (INFO commandstats), where
the limits' work is.
Target (issue: within 10%): the limited run's throughput at least 0.90 of the other's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.queues import Place, _drain, _flush
from bench.runner_daemon import REPO
from bench.servers import own_database, private_servers
from runner.client.client import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers

JOBS = 40_000
ROUNDS = 5
LIMITS = {"concurrency": 1_000_000, "rate": "1000000/s", "rate_burst": 100_000,
          "fair_key": "args.0"}  # fmt: skip
TENANTS = 10
CHUNK = 1000


@dataclass
class LimitFigures:
    jobs: int
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def median(self, kind: str, what: str) -> float:
        return float(statistics.median(run[what] for run in self.runs[kind]))

    def ratios(self) -> dict[str, float]:
        """> 1: the limited run is faster or cheaper."""
        return {what: self.median("none", what) / self.median("limits", what)
                for what in ("seconds", "cpu_seconds", "redis_seconds")}  # fmt: skip

    def targets(self) -> dict[str, bool]:
        return {"a cap, a rate and a fair key that do not bind cost at most 10% of throughput":
                self.ratios()["seconds"] >= 0.90}  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "runs": self.runs, "ratios": self.ratios()}


def render(figures: LimitFigures) -> str:
    lines = [f"a cap, a rate and a fair key not binding ({figures.jobs:,} jobs a run, medians)",
             "  run       jobs/s   daemon cpu s   redis s"]  # fmt: skip
    for kind in ("none", "limits"):
        wall = figures.median(kind, "seconds")
        lines.append(f"  {kind:<7} {figures.jobs / wall:>8,.0f}   "
                     f"{figures.median(kind, 'cpu_seconds'):>12.2f}   "
                     f"{figures.median(kind, 'redis_seconds'):>7.2f}")  # fmt: skip
    ratios = figures.ratios()
    lines.append(f"  limits / none: throughput {ratios['seconds']:.3f}, daemon cpu "
                 f"{ratios['cpu_seconds']:.3f}, redis {ratios['redis_seconds']:.3f}")  # fmt: skip
    for name, met in figures.targets().items():
        lines.append(f"  {'met' if met else 'MISSED'}: {name}")
    return "\n".join(lines)


def _config(place: Place, prefix: str, log_file: Path, limits: dict[str, Any]) -> Path:
    task = {"target": "bench.tasks:noop_for", "kind": "async", **limits}
    sections = {
        "redis": {"url": place.redis_url, "key_prefix": prefix},
        "postgres": {"url": place.database_url},
        "log": {"level": "info", "file": str(log_file), "format": "json"},
        "tasks.noop": task,
    }
    text = "\n".join(
        f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
        for name, values in sections.items()
    )
    path = place.folder / f"{prefix}.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def _enqueue(config: Path, count: int) -> None:
    """The jobs, each for one of TENANTS tenants in turn (its first argument)."""
    async with await Client.connect(load_settings(config, env={})) as client:
        jobs = [client.new_job("noop", [f"t{i % TENANTS}"]) for i in range(count)]
        for i in range(0, count, CHUNK):
            await client.enqueue_many(jobs[i : i + CHUNK])


async def _redis_usec(url: str) -> int:
    redis = Redis.from_url(url)
    try:
        stats = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return sum(int(v["usec"]) for v in stats.values() if isinstance(v, dict))


def _one_run(
    servers: EmbeddedServers, folder: Path, jobs: int, limits: dict[str, Any]
) -> dict[str, float]:
    assert servers.redis_url is not None
    place = Place(servers.redis_url, "", folder, REPO, servers=servers)
    place = replace(place, database_url=own_database(servers.database_url, "limits"))
    asyncio.run(_flush(place.redis_url))
    prefix = f"bench-l-{secrets.token_hex(3)}"
    log_file = folder / f"{prefix}.log"
    config = _config(place, prefix, log_file, limits)
    asyncio.run(_enqueue(config, jobs))
    before = asyncio.run(_redis_usec(place.redis_url))
    wall, cpu = _drain(config, log_file, REPO)
    spent = asyncio.run(_redis_usec(place.redis_url)) - before
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "redis_seconds": round(spent / 1e6, 3)}  # fmt: skip


def measure(
    servers: EmbeddedServers, folder: Path, jobs: int = JOBS, rounds: int = ROUNDS
) -> LimitFigures:
    figures = LimitFigures(jobs, {"none": [], "limits": []})
    for n in range(rounds):
        for kind, limits in (("none", {}), ("limits", LIMITS)):
            run = _one_run(servers, folder, jobs, limits)
            figures.runs[kind].append(run)
            print(f"  round {n + 1} {kind:<7} {jobs / run['seconds']:>8,.0f} jobs/s  "
                  f"cpu {run['cpu_seconds']:.2f} s  redis {run['redis_seconds']:.2f} s",
                  flush=True)  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--jobs", type=int, default=JOBS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with private_servers("limits") as (servers, folder):
        figures = measure(servers, folder, args.jobs, args.rounds)
    print(render(figures))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
