"""`python -m bench.depth`: no-op throughput with 1,000,000 jobs due at once against 20,000.

A claim reads the soonest due jobs of a sorted set, so its cost should not grow
with the number waiting. Each run: no-op jobs are enqueued (due now) while every
daemon is paused (maintenance mode), one daemon starts and records the enqueue
events, then everything is resumed; the figure is jobs/s from the first "job
started" to the 18,000th "job succeeded" in the daemon's own log (so the 20,000
queue is not timed through its last, thinner claims). Both depths are
measured the same way, in the same run, on the same servers.

    .venv/bin/python -m bench.depth              # on private servers of its own
    make bench                                   # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runner_daemon import RunnerDaemon, log_time, read_log, write_config
from bench.servers import private_servers
from runner import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers

COUNT = 20_000  # the shallow queue: every job due at once
TIMED = 18_000  # completions timed at each depth: the shallow queue is never near empty
DEEP = 1_000_000
CHUNK = 2000
TARGET = 0.90  # the deep queue's rate against the shallow one's


@dataclass
class DepthRun:
    depth: int
    jobs_per_s: float
    enqueue_s: float


@dataclass
class DepthFigures:
    shallow: DepthRun
    deep: DepthRun

    @property
    def ratio(self) -> float:
        return self.deep.jobs_per_s / self.shallow.jobs_per_s

    def as_json(self) -> dict[str, Any]:
        return {
            "timed": TIMED,
            "shallow": vars(self.shallow),
            "deep": vars(self.deep),
            "ratio": round(self.ratio, 3),
            "target": TARGET,
            "ok": self.ratio >= TARGET,
        }


async def _enqueue_paused(client: Client, depth: int) -> float:
    await client.pause_all()
    started = time.perf_counter()
    for start in range(0, depth, CHUNK):
        size = min(CHUNK, depth - start)
        await client.enqueue_many([client.new_job("noop") for _ in range(size)])
    return time.perf_counter() - started


async def _wait_recorded(client: Client, timeout: float) -> None:
    """Until the recorder has written every enqueue event."""
    deadline = time.monotonic() + timeout
    while (await client.store.recorder_backlog()).entries > 0:
        if time.monotonic() > deadline:
            raise TimeoutError("the recorder did not catch up with the enqueue events")
        await asyncio.sleep(0.2)


async def _wait_succeeded(log_file: Path, count: int, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        lines = read_log(log_file)
        done = [log_time(line) for line in lines if line.get("event") == "job succeeded"]
        if len(done) >= count:
            first = min(log_time(line) for line in lines if line.get("event") == "job started")
            return [first, sorted(done)[count - 1]]
    raise TimeoutError(f"fewer than {count} jobs succeeded within {timeout}s")


def run_depth(servers: EmbeddedServers, folder: Path, depth: int) -> DepthRun:
    phase = f"depth-{depth}"
    log_file = folder / f"{phase}.log"
    config = write_config(
        folder / f"{phase}.toml", servers.redis_url, servers.database_url,
        f"bench-{phase}-{secrets.token_hex(3)}", log_file,
    )  # fmt: skip
    settings = load_settings(config, env={})

    async def run(daemon: RunnerDaemon) -> DepthRun:
        async with await Client.connect(settings) as client:
            enqueue_s = await _enqueue_paused(client, depth)
            daemon.__enter__()
            daemon.wait_for_line("daemon ready", 60)
            await _wait_recorded(client, timeout=600)
            await client.resume_all()
            first, last = await _wait_succeeded(log_file, TIMED, timeout=300)
        return DepthRun(depth, round(TIMED / (last - first)), round(enqueue_s, 1))

    daemon = RunnerDaemon(config, log_file, folder / f"{phase}.out")
    try:
        result = asyncio.run(run(daemon))
        daemon.stop(60)
    finally:
        daemon.__exit__(None, None, None)
    return result


def measure(servers: EmbeddedServers, folder: Path, deep: int = DEEP) -> DepthFigures:
    print(f"measuring depth ({TIMED:,} of {COUNT:,} due, then of {deep:,}) ...", flush=True)
    shallow = run_depth(servers, folder, COUNT)
    return DepthFigures(shallow, run_depth(servers, folder, deep))


def render(f: DepthFigures) -> str:
    verdict = "ok" if f.ratio >= TARGET else f"MISSED (target {TARGET:.0%})"
    return "\n".join([
        f"depth: no-op jobs/s over the first {TIMED:,} completions",
        f"  {f.shallow.depth:>9,} due   {f.shallow.jobs_per_s:>7,} jobs/s"
        f"   (enqueued in {f.shallow.enqueue_s} s)",
        f"  {f.deep.depth:>9,} due   {f.deep.jobs_per_s:>7,} jobs/s"
        f"   (enqueued in {f.deep.enqueue_s} s)",
        f"  deep / shallow: {f.ratio:.2f}  {verdict}",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.depth", description=__doc__)
    parser.add_argument("--deep", type=int, default=DEEP, help="jobs due in the deep run")
    args = parser.parse_args(argv)
    with private_servers("depth") as (servers, folder):
        figures = measure(servers, folder, args.deep)
    print(render(figures))
    return 0 if figures.ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
