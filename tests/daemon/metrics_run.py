"""Daemons with [metrics] listen, a mix of jobs, and the figures to hold against Postgres."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from runner.client.client import Client
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, daemon_config_file

_RETRY = {"backoff": "20ms", "backoff_max": "50ms", "backoff_jitter": 0}
TASKS: dict[str, dict[str, Any]] = {
    "tasks.fail_io": {"target": "tests.tasks:fail", "kind": "io", "retries": 2, **_RETRY},
    "tasks.noop": {"target": "tests.tasks:noop", "kind": "async"},
    "tasks.sleep_async": {"target": "tests.tasks:sleep_async", "kind": "async"},
}
FAIL_ATTEMPTS = 3  # retries = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metrics_config(
    path: Path, redis_url: str, database_url: str, prefix: str, port: int | None
) -> Path:
    sections: dict[str, Any] = dict(TASKS)
    if port is not None:
        sections["metrics"] = {"listen": f"127.0.0.1:{port}"}
    return daemon_config_file(path, redis_url, database_url, prefix, **sections)


async def scrape(port: int) -> tuple[str, str]:
    """(content type, body) of one daemon's /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200, await response.text()
        return response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, pairs), value in samples(text).items()
        if sample == name and all(dict(pairs).get(k) == v for k, v in labels.items())
    )


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


@dataclass(frozen=True)
class Mix:
    succeed: int
    fail: int
    cancel: int


async def put_load(client: Client, mix: Mix) -> list[str]:
    """Enqueue the mix in batches; returns the ids of the jobs to cancel once running."""
    jobs = [client.new_job("noop") for _ in range(mix.succeed)]
    jobs += [client.new_job("fail_io", ["on purpose"]) for _ in range(mix.fail)]
    doomed = [client.new_job("sleep_async", [60]) for _ in range(mix.cancel)]
    for start in range(0, len(jobs), 500):
        await client.enqueue_many(jobs[start : start + 500])
    await client.enqueue_many(doomed)
    return [job.id for job in doomed]


async def cancel_when_running(client: Client, ids: list[str], timeout: float = 60.0) -> None:
    """Cancel each job once a daemon runs it: the owner then counts it cancelled."""
    left, deadline = set(ids), time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        for job_id in list(left):
            record = await client.get(job_id)
            if record.state == "running":
                await client.cancel(job_id)
                left.discard(job_id)
        await asyncio.sleep(0.05)
    assert not left, f"{len(left)} jobs never ran"


async def states_when_done(pg: PgStore, expected: int, timeout: float) -> Counter[str]:
    """Counts of runner_jobs by state, once `expected` jobs there are terminal."""
    deadline = time.monotonic() + timeout
    counts: Counter[str] = Counter()
    while time.monotonic() < deadline:
        rows = await pg.pool.fetch("SELECT state, count(*) AS n FROM runner_jobs GROUP BY state")
        counts = Counter({row["state"]: row["n"] for row in rows})
        if sum(counts[s] for s in ("succeeded", "failed", "cancelled")) >= expected:
            return counts
        await asyncio.sleep(0.2)
    raise AssertionError(f"jobs not done within {timeout}s: {dict(counts)}")


async def summed_outcomes(ports: list[int], settle: Callable[[dict[str, float]], bool]) -> Any:
    """runner_jobs_finished_total by outcome, summed over the daemons; scraped until
    `settle` accepts the sums (a finish reply can trail its row in Postgres)."""
    for _ in range(50):
        texts = [(await scrape(port))[1] for port in ports]
        sums = {
            outcome: sum(total(t, "runner_jobs_finished_total", outcome=outcome) for t in texts)
            for outcome in ("succeeded", "failed", "retrying", "cancelled")
        }
        if settle(sums):
            break
        await asyncio.sleep(0.1)
    return sums, texts


def spawn_daemons(
    spawn: Callable[..., DaemonProcess], folder: Path, count: int, **servers: str
) -> tuple[list[DaemonProcess], list[int]]:
    ports = [free_port() for _ in range(count)]
    daemons = [
        spawn(metrics_config(folder / f"d{i}.toml", port=port, **servers))
        for i, port in enumerate(ports)
    ]
    for daemon in daemons:
        daemon.wait_ready()
    return daemons, ports
