"""`python -m bench.queue_instructions`: what a job costs the daemon in instructions,
one queue against the runner from before queues, counted by valgrind's callgrind.

A drain's wall time and CPU seconds differ by up to 20% between identical runs on a
shared 2-core machine; an instruction count does not (the same total twice, with
the other core loaded or not). Each runner drains SMALL and then LARGE no-op jobs
under callgrind; the difference over LARGE - SMALL jobs is its cost per job, free
of start-up. The servers run outside valgrind; their side is the same commands for
both (bench/queues.py counts them).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.queues import (
    BEFORE,
    Place,
    _enqueue,
    _flush,
    before_tree,
    write_config,
)
from bench.runner_daemon import REPO
from bench.servers import own_database, private_servers
from runner.servers.embedded import EmbeddedServers

SMALL, LARGE = 4_000, 12_000
TIMEOUT_S = 1200.0


@dataclass(frozen=True)
class Instructions:
    before_per_job: float
    one_queue_per_job: float
    before_start: float  # instructions of a drain beyond its jobs' (start and stop)
    one_queue_start: float

    @property
    def ratio(self) -> float:
        """Instructions per job, one queue against before (< 1.03: within 3%)."""
        return self.one_queue_per_job / self.before_per_job

    def targets(self) -> dict[str, bool]:
        return {"one queue costs the daemon no more than 3% more per job": self.ratio <= 1.03}

    def as_json(self) -> dict[str, float]:
        return {
            "before_per_job": round(self.before_per_job),
            "one_queue_per_job": round(self.one_queue_per_job),
            "ratio": round(self.ratio, 4),
            "before_start": self.before_start,
            "one_queue_start": self.one_queue_start,
        }

    def render(self) -> str:
        return (
            f"  instructions per job (callgrind, {LARGE:,} - {SMALL:,} jobs): before "
            f"{self.before_per_job:,.0f}, one queue {self.one_queue_per_job:,.0f}: "
            f"{self.ratio:.3f}x; start and stop: {self.before_start / 1e9:.2f} G against "
            f"{self.one_queue_start / 1e9:.2f} G"
        )


def _drained_instructions(config: Path, cwd: Path, out: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env.pop("PYTHONPATH", None)
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
               "-m", "runner", "run", "--drain", "--config", str(config)]  # fmt: skip
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT_S, check=False
    )
    found = re.search(r"Collected : (\d+)", done.stderr.decode(errors="replace"))
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the drain under callgrind failed in {cwd}: {done.stderr[-2000:]!r}")
    return int(found.group(1))


def _count(servers: EmbeddedServers, folder: Path, cwd: Path, jobs: int) -> int:
    assert servers.redis_url is not None
    place = Place(
        servers.redis_url, own_database(servers.database_url, "queue_instructions"), folder, cwd
    )
    asyncio.run(_flush(place.redis_url))
    prefix = f"bench-i-{secrets.token_hex(3)}"
    config = write_config(place, prefix, folder / f"{prefix}.log", ["default"])
    asyncio.run(_enqueue(config, ["default"], jobs))
    return _drained_instructions(config, cwd, folder / f"{prefix}.callgrind")


def measure(servers: EmbeddedServers, folder: Path, revision: str = BEFORE) -> Instructions:
    old = before_tree(revision, folder)
    counts = {(tree, jobs): _count(servers, folder, tree, jobs)
              for tree in (old, REPO) for jobs in (SMALL, LARGE)}  # fmt: skip

    def per_job(tree: Path) -> float:
        return (counts[(tree, LARGE)] - counts[(tree, SMALL)]) / (LARGE - SMALL)

    def start(tree: Path) -> float:
        return counts[(tree, SMALL)] - SMALL * per_job(tree)

    return Instructions(per_job(old), per_job(REPO), start(old), start(REPO))


def available() -> bool:
    return shutil.which("valgrind") is not None


def main() -> int:
    if not available():
        print("valgrind is missing: install Debian's 'valgrind' package", file=sys.stderr)
        return 1
    with private_servers("instructions") as (servers, folder):
        found = measure(servers, folder)
    print(found.render())
    return 0 if all(found.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
