"""`python -m bench.log_cost`: what the two JSON lines a job writes ("job started",
"job succeeded") cost the daemon, in one run.

- **The daemon's instructions a job**, counted by valgrind's callgrind (a drain's CPU
  seconds differ by 10-20% between identical runs on this shared 2-core machine;
  an instruction count does not, see bench/queue_instructions.py): one `runner run
  --drain` daemon empties SMALL and then LARGE no-op jobs, at `[log] level = "info"`
  (every line) and at "warning" (no job line), for this runner and for the one before
  job_line (LOG_BEFORE); the job lines' cost is the difference between the levels,
  per job, free of start-up.
- **The lines alone**: both lines of one job, written a few hundred thousand times to
  /dev/null through job_line (runner/logs.py) and through the general logger every
  other line takes; µs a job each.
Target (issue 24: "halve that cost"): the job lines' instructions a job at most half
of what they were before job_line.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.queue_instructions import _drained_instructions, available
from bench.queues import Place, _enqueue, _flush, before_tree, write_config
from bench.runner_daemon import REPO
from bench.servers import own_database, private_servers
from runner import logs
from runner.servers.embedded import EmbeddedServers

SMALL, LARGE = 2_000, 6_000
LOG_BEFORE = "34377a0"  # the last revision before job_line
LINES = 200_000
LEVELS = ("info", "warning")


@dataclass
class LogFigures:
    counts: dict[str, int] = field(default_factory=dict)  # "tree level jobs" -> instructions
    lines_us: dict[str, float] = field(default_factory=dict)

    def per_job(self, tree: str, level: str) -> float:
        large, small = (self.counts[f"{tree} {level} {n}"] for n in (LARGE, SMALL))
        return (large - small) / (LARGE - SMALL)

    def lines(self, tree: str) -> float:
        """The job lines' instructions a job."""
        return self.per_job(tree, "info") - self.per_job(tree, "warning")

    def ratio(self) -> float:
        return self.lines("now") / self.lines("before")

    def targets(self) -> dict[str, bool]:
        return {"the job lines cost the daemon at most half the instructions they did":
                self.ratio() <= 0.5}  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "lines_us": self.lines_us, "ratio": self.ratio(),
                "lines_per_job": {t: self.lines(t) for t in ("before", "now")}}  # fmt: skip


def render(figures: LogFigures) -> str:
    lines = [f"the job lines' cost (callgrind, instructions a job over {LARGE:,} - {SMALL:,} "
             "no-op jobs)",
             "  runner    info a job   warning a job   the lines   share"]  # fmt: skip
    for tree in ("before", "now"):
        info, lines_cost = figures.per_job(tree, "info"), figures.lines(tree)
        lines.append(f"  {tree:<8} {info:>11,.0f} {figures.per_job(tree, 'warning'):>15,.0f} "
                     f"{lines_cost:>11,.0f} {lines_cost / info:>7.1%}")  # fmt: skip
    lines.append(f"  now / before, the lines: {figures.ratio():.2f}x")
    us = figures.lines_us
    lines.append(f"  both lines of a job alone: {us['job_line']:.2f} µs (the general logger: "
                 f"{us['logger']:.2f} µs, {us['logger'] / us['job_line']:.1f}x)")  # fmt: skip
    for name, met in figures.targets().items():
        lines.append(f"  {'met' if met else 'MISSED'}: {name}")
    return "\n".join(lines)


def lines_alone(count: int = LINES) -> dict[str, float]:
    """µs for both lines of one job, through each path, to /dev/null."""
    logs.configure_logging("info", "json", "/dev/null")
    log = logs.get_logger()
    started = time.perf_counter()
    for _ in range(count):
        logs.job_line("job started", job_id="4xq7m2kd9w", task="noop", attempt=1,
                      state="running")  # fmt: skip
        logs.job_line("job succeeded", job_id="4xq7m2kd9w", task="noop", attempt=1,
                      state="succeeded", duration_ms=0.123)  # fmt: skip
    fast = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(count):
        log.info("job started", job_id="4xq7m2kd9w", task="noop", attempt=1, state="running")
        log.info("job succeeded", job_id="4xq7m2kd9w", task="noop", attempt=1,
                 state="succeeded", duration_ms=0.123)  # fmt: skip
    general = time.perf_counter() - started
    return {"job_line": fast / count * 1e6, "logger": general / count * 1e6}


def _count(servers: EmbeddedServers, folder: Path, tree: Path, level: str, jobs: int) -> int:
    assert servers.redis_url is not None
    place = Place(servers.redis_url, own_database(servers.database_url, "log_cost"), folder, tree)
    asyncio.run(_flush(place.redis_url))
    prefix = f"bench-log-{secrets.token_hex(3)}"
    config = write_config(place, prefix, folder / f"{prefix}.log", ["default"], level)
    asyncio.run(_enqueue(config, ["default"], jobs))
    return _drained_instructions(config, tree, folder / f"{prefix}.callgrind")


def measure(servers: EmbeddedServers, folder: Path) -> LogFigures:
    trees = {"before": before_tree(LOG_BEFORE, folder), "now": REPO}
    figures = LogFigures()
    for name, tree in trees.items():
        for level in LEVELS:
            for jobs in (SMALL, LARGE):
                figures.counts[f"{name} {level} {jobs}"] = _count(
                    servers, folder, tree, level, jobs
                )
                print(f"  {name} {level} {jobs}: {figures.counts[f'{name} {level} {jobs}']:,}",
                      flush=True)  # fmt: skip
    figures.lines_us = lines_alone()
    return figures


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m bench.log_cost", description=__doc__).parse_args(argv)
    if not available():
        print("valgrind is missing: install Debian's 'valgrind' package", file=sys.stderr)
        return 1
    started = time.monotonic()
    with private_servers("log-cost") as (servers, folder):
        figures = measure(servers, folder)
    print(render(figures))
    print(f"({time.monotonic() - started:.0f} s)")
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
