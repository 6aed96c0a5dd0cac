"""Dramatiq and Huey as seen from the project's venv: no-op throughput, run as a user would.

Their code runs under the peer venv (`--peer-python`, see bench/dramatiq_app.py and
bench/huey_app.py). For each: the jobs are enqueued first through the peer's own
API, then its own worker command starts with the settings printed beside its
figure, and the run is timed from the moment every worker process (or thread) is
up to the moment this process sees the queue empty in Redis (polled every 5 ms;
a no-op job is done once it has left the queue). The workers keep nothing durable
while runner writes every transition to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.plan import Plan
from bench.runner_daemon import REPO
from bench.stats import Throughput
from runner.store import redis_client

POLL_S = 0.005


@dataclass(frozen=True)
class QueuePeer:
    name: str
    app: str  # the module with the peer's app and its enqueue command
    worker: tuple[str, ...]  # the worker command after `python -m`
    settings: str  # what is printed beside the figure
    pending_key: str  # "{queue}" filled in: the key that empties when all is done
    booted_marks: int  # processes or threads that each report "booted"

    def key(self, queue: str) -> str:
        return self.pending_key.format(queue=queue)


DRAMATIQ = QueuePeer(
    name="dramatiq",
    app="bench.dramatiq_app",
    worker=("dramatiq", "bench.dramatiq_app", "--processes", "2", "--threads", "8"),
    # Its defaults; 2 x 2 and 4 x 4 were slower here.
    settings="its defaults: 2 processes (one a CPU) x 8 threads, Redis broker",
    pending_key="dramatiq:{queue}.msgs",
    booted_marks=2,
)
HUEY_WORKER = "huey.bin.huey_consumer", "bench.huey_app.huey"
HUEY = QueuePeer(
    name="huey",
    app="bench.huey_app",
    worker=(*HUEY_WORKER, "--workers", "4", "--worker-type", "process", "--no-periodic"),
    # The best of 1-2 threads and 2-4 processes measured here (4,308 jobs/s).
    settings="4 worker processes, results off, no periodic tasks",
    pending_key="huey.redis.{queue}",
    booted_marks=4,
)
PEERS = (DRAMATIQ, HUEY)


def peer_env(redis_url: str, queue: str, marks: Path) -> dict[str, str]:
    return {**os.environ, "BENCH_REDIS": redis_url, "BENCH_QUEUE": queue, "BENCH_MARKS": str(marks)}


def booted_at(marks: Path) -> list[float]:
    if not marks.exists():
        return []
    return [json.loads(line)["t"] for line in marks.read_text().splitlines() if line.strip()]


async def _pending(redis_url: str, key: str) -> int:
    redis = redis_client(redis_url)
    try:
        kind = await redis.type(key)
        if kind == "hash":
            return int(await redis.hlen(key))
        return int(await redis.llen(key)) if kind == "list" else 0
    finally:
        await redis.aclose()


async def _wait_empty(redis_url: str, key: str, timeout: float) -> float:
    redis = redis_client(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            kind = await redis.type(key)
            if kind == "none":
                return time.time()
            await asyncio.sleep(POLL_S)
    finally:
        await redis.aclose()
    raise TimeoutError(f"the queue {key} did not empty within {timeout}s")


def throughput(
    peer: QueuePeer, python: Path, redis_url: str, folder: Path, plan: Plan
) -> Throughput:
    """Enqueue `plan.jobs` no-op jobs with the peer's API, then time its worker draining them."""
    queue = f"bench{secrets.token_hex(3)}"
    marks = folder / f"{peer.name}.marks"
    env = peer_env(redis_url, queue, marks)
    enqueue = subprocess.run(
        [str(python), "-m", peer.app, "enqueue", "--jobs", str(plan.jobs)],
        capture_output=True, text=True, cwd=REPO, env=env, check=False,
    )  # fmt: skip
    if enqueue.returncode != 0:
        raise RuntimeError(f"{peer.name} enqueue failed:\n{enqueue.stderr[-3000:]}")
    queued = asyncio.run(_pending(redis_url, peer.key(queue)))
    if queued != plan.jobs:
        raise RuntimeError(f"{peer.name}: {queued} jobs in {peer.key(queue)}, not {plan.jobs}")
    with (folder / f"{peer.name}.out").open("wb") as out:
        proc = subprocess.Popen(
            [str(python), "-m", *peer.worker], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        ended = asyncio.run(_wait_empty(redis_url, peer.key(queue), plan.timeout_s * 5))
        booted = booted_at(marks)
        if len(booted) < peer.booted_marks:
            raise RuntimeError(f"{peer.name}: {len(booted)} of {peer.booted_marks} booted marks")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    seconds = ended - max(booted)
    return Throughput(
        jobs=plan.jobs,
        seconds=seconds,
        enqueue_seconds=json.loads(enqueue.stdout)["enqueue_seconds"],
    )
