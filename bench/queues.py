"""`python -m bench.queues`: what named queues and priorities cost, in one run.

Three kinds of run of the same no-op work (jobs enqueued first through the public
Client, then one `runner run --drain` daemon empties them and records every
transition), alternated round after round so that the machine's drift spreads
over all of them:

- before: the runner from before queues (`--before`, a git revision; its
  `runner/` is taken from git into a folder of its own) on its one set of keys;
- one queue: this runner, every job in the default queue;
- six queues: this runner, the jobs spread over six queues served with weights
  1, 2, 3, 1, 2, 3.

Each run's figure is the daemon's wall time from "daemon ready" to "daemon
stopped" and its CPU time (user + system, from the kernel's accounting of the
child), which is steadier on a busy machine. Then the six queues on a Redis
Cluster of 3 primaries (Debian's redis-server, as the tests start it), two
queues a primary, against the same on one node, with the commands each primary
ran. This machine has 2 cores: the cluster's six servers share them with the
daemon, so it cannot be faster here; see the README's scaling section.

    .venv/bin/python -m bench.queues            # on private servers of its own
    make bench                                  # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.runner_daemon import REPO, find_line, log_time, read_log
from bench.servers import own_database, private_servers
from runner import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers
from runner.store.redis.keys import Keys
from tests.redis_cluster import queues_on_every_primary, start_cluster

JOBS = 40_000
ROUNDS = 5
BEFORE = "8cb2151"  # the last revision before named queues
WEIGHTS = [1, 2, 3, 1, 2, 3]
CHUNK = 1000
TIMEOUT_S = 180.0


@dataclass
class Run:
    kind: str
    seconds: float
    cpu_seconds: float


@dataclass
class QueueFigures:
    jobs: int
    runs: list[Run] = field(default_factory=list)
    cluster: dict[str, Any] = field(default_factory=dict)

    def median(self, kind: str, what: str = "seconds") -> float:
        return float(
            statistics.median(float(getattr(r, what)) for r in self.runs if r.kind == kind)
        )

    def ratios(self) -> dict[str, float]:
        """Throughput (jobs/s) and CPU economy (1 / cpu s) against a reference: > 1 is
        faster, or cheaper."""
        found = {}
        for kind, against in (("one queue", "before"), ("six queues", "one queue")):
            for what, label in (("seconds", "throughput"), ("cpu_seconds", "cpu")):
                found[f"{kind} / {against} ({label})"] = self.median(against, what) / self.median(
                    kind, what
                )
        return found

    def targets(self) -> dict[str, bool]:
        ratios = self.ratios()
        return {
            "one queue no more than 3% slower than before": ratios[
                "one queue / before (throughput)"
            ]
            >= 0.97,
            "six weighted queues' throughput within 10% of one queue's": ratios[
                "six queues / one queue (throughput)"
            ]
            >= 0.90,
        }

    def as_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "runs": [asdict(r) for r in self.runs],
                "ratios": self.ratios(), "cluster": self.cluster}  # fmt: skip


def before_tree(revision: str, folder: Path) -> Path:
    """The revision's `runner/` and the benchmark's tasks, in a folder of their own:
    a daemon started there imports that runner, not this one."""
    tree = folder / f"runner-{revision}"
    archive = subprocess.run(
        ["git", "archive", revision, "runner", "bench"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


@dataclass(frozen=True)
class Place:
    """Where a run works: its servers, a folder for its files, the tree it runs from."""

    redis_url: str
    database_url: str
    folder: Path
    cwd: Path = REPO
    cluster: bool = False
    servers: EmbeddedServers | None = None  # to make a database for each run on


def write_config(
    place: Place, prefix: str, log_file: Path, queues: list[str], level: str = "info"
) -> Path:
    sections: dict[str, dict[str, Any]] = {
        "redis": {"url": place.redis_url, "key_prefix": prefix, "cluster": place.cluster},
        "postgres": {"url": place.database_url},
        "log": {"level": level, "file": str(log_file), "format": "json"},
        "tasks.noop": {"target": "bench.tasks:noop", "kind": "async"},
    }
    if queues != ["default"]:
        sections["daemon"] = {"queues": dict(zip(queues, WEIGHTS, strict=False))}
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k} = {v}" for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path = place.folder / f"{prefix}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def _enqueue(config: Path, queues: list[str], count: int) -> None:
    settings = load_settings(config, env={})
    async with await Client.connect(settings) as client:
        jobs = [client.new_job("noop", queue=queues[i % len(queues)]) for i in range(count)]
        for i in range(0, count, CHUNK):
            await client.enqueue_many(jobs[i : i + CHUNK])


def _drain(config: Path, log_file: Path, cwd: Path) -> tuple[float, float]:
    """Run `runner run --drain` from `cwd` until it exits: (wall s, cpu s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env.pop("PYTHONPATH", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "runner", "run", "--drain", "--config", str(config)],
        cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:].decode(errors="replace")
        log = log_file.read_text()[-2000:] if log_file.exists() else ""
        raise RuntimeError(f"the daemon exited {done.returncode} in {cwd}:\n{output}\n{log}")
    lines = read_log(log_file)
    wall = log_time(find_line(lines, "daemon stopped")) - log_time(find_line(lines, "daemon ready"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _one_run(place: Place, queues: list[str], jobs: int) -> tuple[float, float]:
    """One drain, on a database of its own: runs that shared one would each find a
    bigger history than the last."""
    prefix = f"bench-q-{secrets.token_hex(3)}"
    if place.servers is not None:
        place = replace(place, database_url=own_database(place.servers.database_url, "queues"))
        asyncio.run(_flush(place.redis_url))
    log_file = place.folder / f"{prefix}.log"
    config = write_config(place, prefix, log_file, queues)
    asyncio.run(_enqueue(config, queues, jobs))
    return _drain(config, log_file, place.cwd)


async def _flush(redis_url: str) -> None:
    """An empty Redis for the run: the runs before it leave their finished jobs for a
    day (keep_finished), which a drain's last walk over the job hashes would meet."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def _commands(ports: list[int]) -> dict[int, int]:
    found = {}
    for port in ports:
        node = Redis(port=port, decode_responses=True)
        try:
            stats = await node.info("commandstats")
        finally:
            await node.aclose()
        found[port] = sum(int(v.get("calls", 0)) for v in stats.values() if isinstance(v, dict))
    return found


def measure_cluster(servers: EmbeddedServers, folder: Path, jobs: int) -> dict[str, Any]:
    database_url = own_database(servers.database_url, "queues")
    cluster = start_cluster()
    try:
        prefix = f"bench-c-{secrets.token_hex(3)}"
        queues = [
            q for names in queues_on_every_primary(cluster, prefix, 2).values() for q in names
        ]
        primaries = sorted({cluster.primary_of(Keys(prefix, q).events).port for q in queues})
        log_file = folder / f"{prefix}.log"
        place = Place(cluster.url, database_url, folder, cluster=True)
        config = write_config(place, prefix, log_file, queues)
        asyncio.run(_enqueue(config, queues, jobs))
        before = asyncio.run(_commands(primaries))
        wall, cpu = _drain(config, log_file, REPO)
        after = asyncio.run(_commands(primaries))
    finally:
        cluster.close()
    assert servers.redis_url is not None
    one_node = Place(servers.redis_url, "", folder, servers=servers)
    one_wall, one_cpu = _one_run(one_node, queues, jobs)
    return {
        "queues": queues,
        "cluster_jobs_per_s": round(jobs / wall),
        "cluster_daemon_cpu_s": round(cpu, 2),
        "one_node_jobs_per_s": round(jobs / one_wall),
        "one_node_daemon_cpu_s": round(one_cpu, 2),
        "commands_per_primary": {str(p): after[p] - before[p] for p in primaries},
    }


def measure(
    servers: EmbeddedServers, folder: Path, *, revision: str = BEFORE, rounds: int = ROUNDS,
    cluster: bool = True, jobs: int = JOBS,
) -> QueueFigures:  # fmt: skip
    assert servers.redis_url is not None
    old = before_tree(revision, folder)
    figures = QueueFigures(jobs)
    six = [f"q{n}" for n in range(6)]
    plan = [
        ("before", Place(servers.redis_url, "", folder, old, servers=servers), ["default"]),
        ("one queue", Place(servers.redis_url, "", folder, servers=servers), ["default"]),
        ("six queues", Place(servers.redis_url, "", folder, servers=servers), six),
    ]
    for n in range(rounds):
        for kind, place, queues in plan:
            wall, cpu = _one_run(place, queues, jobs)
            figures.runs.append(Run(kind, round(wall, 3), round(cpu, 3)))
            print(f"  round {n + 1} {kind:<10} {jobs / wall:>8,.0f} jobs/s  cpu {cpu:.2f} s",
                  flush=True)  # fmt: skip
    if cluster:
        figures.cluster = measure_cluster(servers, folder, jobs)
    return figures


def render(figures: QueueFigures) -> str:
    lines = [f"named queues ({figures.jobs:,} no-op jobs a run, medians of the rounds)",
             "  run          jobs/s   daemon cpu s"]  # fmt: skip
    for kind in ("before", "one queue", "six queues"):
        wall, cpu = figures.median(kind), figures.median(kind, "cpu_seconds")
        lines.append(f"  {kind:<10} {figures.jobs / wall:>8,.0f}   {cpu:>12.2f}")
    for name, ratio in figures.ratios().items():
        lines.append(f"  {name}: {ratio:.3f}")
    for name, met in figures.targets().items():
        lines.append(f"  {'met' if met else 'MISSED'}: {name}")
    if figures.cluster:
        c = figures.cluster
        lines.append(
            f"  six queues on a 3-primary cluster: {c['cluster_jobs_per_s']:,} jobs/s "
            f"(daemon cpu {c['cluster_daemon_cpu_s']} s); on one node: "
            f"{c['one_node_jobs_per_s']:,} jobs/s (cpu {c['one_node_daemon_cpu_s']} s)"
        )
        lines.append(f"  commands per primary: {c['commands_per_primary']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queues", description=__doc__)
    parser.add_argument("--before", default=BEFORE, help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--jobs", type=int, default=JOBS, help="no-op jobs a run")
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with private_servers("queues") as (servers, folder):
        figures = measure(servers, folder, revision=args.before, rounds=args.rounds,
                          cluster=not args.no_cluster, jobs=args.jobs)  # fmt: skip
    print(render(figures))
    print(f"({time.monotonic() - started:.0f} s)")
    Path(tempfile.gettempdir(), "runner-bench-queues.json").write_text(
        json.dumps(figures.as_json(), indent=2)
    )
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
