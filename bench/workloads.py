"""The io and cpu workloads: the same job bodies (bench/work.py) through runner,
Dramatiq and Huey, each given the same number of threads or processes.

- io: 1,000 jobs that block for 20 ms, through 50 threads (ideal 0.40 s), against
  its floor: a bare pool of 50 threads claiming their own next job with runner's
  claim script and doing nothing else (bench/io_floor.py), measured in the same run;
- cpu: 100 jobs that use 50 ms of CPU, through 2 processes (ideal 2.5 s), against
  the bodies' own time stretched by the machine (the sum of their spans over the
  2 processes: a pool that lost no time between two bodies).

Every job is enqueued before the workers start (runner's daemon starts paused,
in maintenance mode, and is resumed); the figure is the span from the first
body's start to the last body's end, as the bodies record it.

    .venv/bin/python -m bench.workloads --peer-python .bench-venv/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import io_floor, work
from bench.runner_daemon import REPO, RunnerDaemon
from bench.servers import own_database, private_servers
from runner import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers

TIMEOUT_S = 120.0
IO_TARGET, CPU_TARGET = 1.05, 1.02  # runner's wall against the io floor, the cpu stretch


@dataclass(frozen=True)
class Workload:
    name: str
    jobs: int
    seconds: float  # each body's work
    slots: int  # threads (io) or processes (cpu) every system gets
    # The peers' worker options for these slots.
    dramatiq: tuple[str, ...]
    huey: tuple[str, ...]

    @property
    def ideal(self) -> float:
        return self.jobs * self.seconds / self.slots


IO = Workload("io", 1000, 0.02, 50, ("--processes", "1", "--threads", "50"),
              ("--workers", "50", "--worker-type", "thread"))  # fmt: skip
CPU = Workload("cpu", 100, 0.05, 2, ("--processes", "2", "--threads", "1"),
               ("--workers", "2", "--worker-type", "process"))  # fmt: skip
WORKLOADS = (IO, CPU)


PEERS = ("dramatiq", "huey")


@dataclass
class WorkloadFigures:
    walls: dict[str, dict[str, float]] = field(default_factory=dict)  # workload -> system -> s
    # workload -> what runner is held to: the io floor's wall, the cpu bodies' stretch
    floors: dict[str, float] = field(default_factory=dict)

    def ratio(self, workload: Workload, system: str = "runner") -> float:
        return self.walls[workload.name][system] / self.floors[workload.name]

    def _ahead(self, workload: Workload) -> dict[str, bool]:
        walls = self.walls[workload.name]
        peers = [s for s in walls if s in PEERS]
        if not peers:
            return {}
        name = f"{workload.name}: runner ahead of " + " and ".join(peers)
        return {name: all(walls["runner"] < walls[p] for p in peers)}

    def targets(self) -> dict[str, bool]:
        return {
            f"io: runner <= {IO_TARGET:g}x its floor": self.ratio(IO) <= IO_TARGET,
            **self._ahead(IO),
            f"cpu: runner <= {CPU_TARGET:g}x the bodies' stretch": self.ratio(CPU) <= CPU_TARGET,
            **self._ahead(CPU),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            w.name: {
                "jobs": w.jobs, "seconds_each": w.seconds, "slots": w.slots, "ideal_s": w.ideal,
                "floor_s": round(self.floors[w.name], 3),
                "wall_s": {s: round(t, 3) for s, t in self.walls[w.name].items()},
                "runner_to_floor": round(self.ratio(w), 3),
            }
            for w in WORKLOADS
        } | {"targets": self.targets()}  # fmt: skip


def _runner_config(folder: Path, servers: EmbeddedServers, w: Workload, log: Path) -> Path:
    pools = f"io = {w.slots}" if w.name == "io" else f"cpu = {w.slots}"
    target = "bench.work:blocking_io" if w.name == "io" else "bench.work:cpu_burn"
    path = folder / f"work-{w.name}.toml"
    prefix = f"bench-{w.name}-{secrets.token_hex(3)}"
    path.write_text(
        f'[redis]\nurl = "{servers.redis_url}"\nkey_prefix = "{prefix}"\n'
        f'[postgres]\nurl = "{own_database(servers.database_url, f"work_{w.name}")}"\n'
        f'[log]\nlevel = "info"\nfile = "{log}"\nformat = "json"\n'
        f"[pools]\n{pools}\n"
        f'[tasks.work]\ntarget = "{target}"\nkind = "{w.name}"\n',
        encoding="utf-8",
    )
    return path


async def _wait_bodies(path: Path, jobs: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):  # noqa: ASYNC240  # a stat, between sleeps
            done, wall = work.span(str(path))
            if done >= jobs:
                return wall
        await asyncio.sleep(0.05)
    raise TimeoutError(f"fewer than {jobs} bodies recorded in {path} within {timeout}s")


def runner_wall(servers: EmbeddedServers, folder: Path, w: Workload) -> tuple[float, float]:
    """Runner's wall, and its bodies' stretch (bench/work.py)."""
    log, bodies = folder / f"work-{w.name}.log", folder / f"bodies-runner-{w.name}.txt"
    config = _runner_config(folder, servers, w, log)
    settings = load_settings(config, env={})

    async def enqueue(resume: bool) -> None:
        async with await Client.connect(settings) as client:
            if resume:
                await client.resume_all()
                return
            await client.pause_all()
            await client.enqueue_many(
                [client.new_job("work", [w.seconds, str(bodies)]) for _ in range(w.jobs)]
            )

    asyncio.run(enqueue(resume=False))
    with RunnerDaemon(config, log, folder / f"work-{w.name}.out") as daemon:
        daemon.wait_for_line("daemon ready", 60)
        asyncio.run(enqueue(resume=True))
        wall = asyncio.run(_wait_bodies(bodies, w.jobs, TIMEOUT_S))
        daemon.stop(60)
    return wall, work.stretched(str(bodies), w.slots)


def peer_wall(name: str, python: Path, redis_url: str, folder: Path, w: Workload) -> float:
    """Enqueue through the peer's own API, then run its own worker with the slots."""
    bodies = folder / f"bodies-{name}-{w.name}.txt"
    env = {**os.environ, "BENCH_REDIS": redis_url, "BENCH_QUEUE": f"work{secrets.token_hex(3)}"}
    app = f"bench.{name}_app"
    enqueue = subprocess.run(
        [str(python), "-m", app, "enqueue", "--jobs", str(w.jobs), "--task", w.name,
         "--seconds", str(w.seconds), "--path", str(bodies)],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    if enqueue.returncode != 0:
        raise RuntimeError(f"{name} enqueue failed:\n{enqueue.stderr[-3000:]}")
    worker = (
        ["dramatiq", app, *w.dramatiq]
        if name == "dramatiq"
        else ["huey.bin.huey_consumer", f"{app}.huey", *w.huey, "--no-periodic"]
    )
    with (folder / f"{name}-{w.name}.out").open("wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", *worker], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        return asyncio.run(_wait_bodies(bodies, w.jobs, TIMEOUT_S))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def measure(servers: EmbeddedServers, folder: Path, peer_python: Path | None) -> WorkloadFigures:
    figures = WorkloadFigures()
    for w in WORKLOADS:
        print(f"measuring the {w.name} workload ...", flush=True)
        wall, stretch = runner_wall(servers, folder, w)
        walls = {"runner": wall}
        if w is IO:
            walls["floor"] = io_floor.floor_wall(servers, folder, w.jobs, w.seconds, w.slots)
        figures.floors[w.name] = walls["floor"] if w is IO else stretch
        for name in PEERS if peer_python else ():
            walls[name] = peer_wall(name, peer_python, servers.redis_url, folder, w)  # type: ignore[arg-type]  # set when named
        figures.walls[w.name] = walls
    return figures


def render(f: WorkloadFigures) -> str:
    lines = []
    for w in WORKLOADS:
        unit = "threads" if w.name == "io" else "processes"
        floor = f.floors[w.name]
        held_to = "its floor" if w is IO else "the bodies' stretch"
        lines.append(f"{w.name}: {w.jobs:,} x {w.seconds * 1000:g} ms through {w.slots} {unit}"
                     f" (ideal {w.ideal:.2f} s; first body start to last body end)")  # fmt: skip
        if w is CPU:
            lines.append(f"  stretch  {floor:>8.3f} s  (runner's bodies' spans over {w.slots})")
        for system, wall in f.walls[w.name].items():
            options = {"runner": f"[pools] {w.name} = {w.slots}",
                       "floor": "bare threads claiming with runner's claim script",
                       "dramatiq": " ".join(w.dramatiq), "huey": " ".join(w.huey)}  # fmt: skip
            lines.append(f"  {system:<9}{wall:>8.3f} s  {wall / w.ideal:>6.2f}x the ideal"
                         f"  {wall / floor:>5.2f}x {held_to}   ({options[system]})")  # fmt: skip
    lines += ["", "targets:"]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in f.targets().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads", description=__doc__)
    parser.add_argument("--peer-python", type=Path, help="python of the venv with the peers")
    args = parser.parse_args(argv)
    with private_servers("workloads") as (servers, folder):
        figures = measure(servers, folder, args.peer_python)
    print(render(figures))
    print(json.dumps(figures.as_json()))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
