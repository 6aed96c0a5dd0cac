"""Delayed-job lateness of Dramatiq and Huey, on the plan runner and arq run (bench/plan.py).

Each peer's own worker command starts first, with the settings printed beside its
figures; once every worker process is up, the plan's jobs are enqueued through
the peer's own delay API (the app's `late` command under the peer venv), each
told the exact due time asked for. The body every system runs (bench/late.py)
records its start against it: p50, p99, max, and how many started early.

    .venv/bin/python -m bench.peer_lateness --peer-python .bench-venv/bin/python \\
        --jobs 200 --spread 3               # runner and arq too, on private servers
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import late, peer_process, queue_peers, report, runner_side
from bench.peer import SETTINGS as ARQ_SETTINGS
from bench.peer import Peer
from bench.plan import Plan
from bench.runner_daemon import REPO
from bench.servers import private_servers
from bench.stats import Lateness

BOOT_S = 60.0


@dataclass(frozen=True)
class LatePeer:
    name: str
    app: str  # the module with the peer's app and its `late` command
    worker: tuple[str, ...]  # the worker command after `python -m`
    settings: str  # what is printed beside the figures
    booted_marks: int  # processes or threads that each report "booted"
    env: Mapping[str, str] = field(default_factory=dict)  # the worker's own settings


DRAMATIQ = LatePeer(
    name="dramatiq",
    app=queue_peers.DRAMATIQ.app,
    worker=queue_peers.DRAMATIQ.worker,
    # An idle consumer sleeps up to worker_timeout before it fetches again and
    # releases the delayed messages now due: lowered as arq's poll_delay is.
    settings="its defaults (2 processes x 8 threads) with dramatiq_worker_timeout=50"
    " (ms an idle consumer sleeps; its default 1000)",
    booted_marks=queue_peers.DRAMATIQ.booted_marks,
    env={"dramatiq_worker_timeout": "50"},
)
HUEY = LatePeer(
    name="huey",
    app=queue_peers.HUEY.app,
    # Its scheduler moves due tasks to the queue once per interval: whole seconds,
    # 1 at the least (its default).
    worker=(*queue_peers.HUEY.worker, "--scheduler-interval", "1"),
    settings="4 worker processes, --scheduler-interval 1 (s; its finest and its default)",
    booted_marks=queue_peers.HUEY.booted_marks,
)
PEERS = (DRAMATIQ, HUEY)


def lateness(peer: LatePeer, python: Path, redis_url: str, folder: Path, plan: Plan) -> Lateness:
    """The plan's delayed jobs through the peer's delay API, on its running worker."""
    marks, bodies = folder / f"{peer.name}-late.marks", folder / f"late-{peer.name}.txt"
    env = {**queue_peers.peer_env(redis_url, f"late{secrets.token_hex(3)}", marks), **peer.env}
    proc = peer_process.start(python, peer.worker, env, folder / f"{peer.name}-late.out")
    try:
        peer_process.wait_booted(proc, marks, peer.booted_marks, BOOT_S)
        enqueue = subprocess.run(
            [str(python), "-m", peer.app, "late", *plan.late_options(), "--path", str(bodies)],
            capture_output=True, text=True, cwd=REPO, env=env, check=False,
        )  # fmt: skip
        if enqueue.returncode != 0:
            raise RuntimeError(f"{peer.name} late enqueue failed:\n{enqueue.stderr[-3000:]}")
        late.wait_recorded(str(bodies), plan.late_jobs, plan.offset_s + plan.spread_s + BOOT_S)
    finally:
        peer_process.stop(proc)
    samples = late.samples_ms(str(bodies))
    if len(samples) != plan.late_jobs:
        raise RuntimeError(f"{peer.name}: {len(samples)} delayed jobs ran, not {plan.late_jobs}")
    return Lateness.from_samples(samples)


def measure(python: Path, redis_url: str, folder: Path, plan: Plan) -> dict[str, Lateness]:
    found = {}
    for peer in PEERS:
        print(f"measuring {peer.name} lateness ...", flush=True)
        found[peer.name] = lateness(peer, python, redis_url, folder, plan)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_lateness", description=__doc__)
    parser.add_argument("--peer-python", type=Path, required=True, help="the peer venv's python")
    parser.add_argument("--jobs", type=int, default=200, help="delayed jobs a system")
    parser.add_argument("--spread", type=float, default=3.0, help="seconds the due times span")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    plan = Plan(0, args.jobs, args.spread, offset_s=1.0, seed=args.seed, timeout_s=60.0)
    with private_servers("lateness") as (servers, folder):
        setup = runner_side.Setup(servers.redis_url, servers.database_url, folder)
        rows = {"runner": (runner_side.lateness(setup, plan).started, report.RUNNER_SETTINGS)}
        arq = Peer(args.peer_python, servers.redis_url, folder)
        rows["arq"] = (arq.lateness(plan), ARQ_SETTINGS)
        for name, found in measure(args.peer_python, servers.redis_url, folder, plan).items():
            rows[name] = (found, next(p.settings for p in PEERS if p.name == name))
    print(f"lateness: {plan.late_jobs:,} jobs due at random over {plan.spread_s:g} s")
    print("\n".join(report.late_lines(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
