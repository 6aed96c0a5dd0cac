"""The cost of webhooks: no-op throughput with a sink whose endpoint is down against
no sink at all, and the time from a transition to its delivery when the endpoint is
healthy.

Throughput: the no-op drain of bench/runner_side.py, alternately without a sink and
with one POSTing every terminal transition to a closed port (connection refused:
every delivery fails and waits to be retried, as during an outage), the median of
each. Target: within 5%.

Latency: a daemon and a local aiohttp endpoint in this process; jobs are enqueued
at a steady rate and each delivery's age is the endpoint's clock at arrival minus
the transition's `at` (same machine, same clock). Target: p99 under 50 ms.

    .venv/bin/python -m bench.webhooks            # on private servers of its own
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from bench.metrics import _drain_rate_with, _timings
from bench.runner_daemon import RunnerDaemon
from bench.runner_side import Setup
from runner import Client
from runner.servers.embedded import EmbeddedServers
from runner.store import redis_client

THROUGHPUT_JOBS = 20_000
ROUNDS = 5
LATENCY_RATE = 500  # jobs/s while latency is measured
LATENCY_SECONDS = 10.0
COST_TARGET = 0.05
P99_TARGET_MS = 50.0
TIMEOUT_S = 180.0
SECRET = "bench-webhook-secret-0123456789"


@dataclass
class WebhookFigures:
    rate_off: list[float] = field(default_factory=list)  # no sink
    rate_down: list[float] = field(default_factory=list)  # a sink whose endpoint is down
    latency_ms: dict[str, float] = field(default_factory=dict)
    delivered: int = 0
    expected: int = 0

    @property
    def cost(self) -> float:
        return 1 - statistics.median(self.rate_down) / statistics.median(self.rate_off)

    def targets(self) -> dict[str, bool]:
        return {
            f"endpoint down costs < {COST_TARGET:.0%} of no-op throughput": self.cost < COST_TARGET,
            f"transition to delivery p99 < {P99_TARGET_MS:g} ms (healthy endpoint)": (
                self.latency_ms.get("p99", 1e9) < P99_TARGET_MS
            ),
        }

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "cost": round(self.cost, 4), "targets": self.targets()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sink_section(port: int) -> str:
    return f'\n[notify.bench]\nurl = "http://127.0.0.1:{port}/hook"\nsecret = "{SECRET}"\n'


def throughput_phase(setup: Setup, figures: WebhookFigures, jobs: int, rounds: int) -> None:
    for i in range(rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        names = " then ".join("down" if on else "none" for on in order)
        print(f"  throughput round {i + 1}/{rounds} ({jobs:,} no-op jobs, sink {names}) ...",
              flush=True)  # fmt: skip
        for on in order:
            asyncio.run(_fresh(setup))
            extra = _sink_section(_free_port()) if on else ""  # nothing listens there
            rate = _drain_rate_with(setup, f"webhooks-{'down' if on else 'none'}-{i}", extra, jobs)
            (figures.rate_down if on else figures.rate_off).append(rate)


async def _fresh(setup: Setup) -> None:
    """Empty servers before each run: otherwise every run meets the streams and tables
    the runs before it left (a stream a down sink's group still holds among them) and
    is slower for it, whichever side it measures."""
    redis = redis_client(setup.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    conn = await asyncpg.connect(setup.database_url)
    try:
        await conn.execute(
            "TRUNCATE runner_jobs, runner_job_events, runner_webhook_attempts, runner_parked_jobs"
        )
    finally:
        await conn.close()


class Endpoint:
    """Records each delivery's age: arrival (this clock) minus the transition's `at`."""

    def __init__(self, expected: int) -> None:
        self.ages_ms: list[float] = []
        self.event_ids: set[str] = set()
        self.expected = expected
        self.all_in = asyncio.Event()

    async def hook(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        arrived = time.time()
        if body["event_id"] not in self.event_ids:
            self.event_ids.add(body["event_id"])
            at = datetime.fromisoformat(body["at"].replace("Z", "+00:00")).timestamp()
            self.ages_ms.append((arrived - at) * 1000)
            if len(self.event_ids) >= self.expected:
                self.all_in.set()
        return web.Response(status=204)


async def _latency_run(setup: Setup, figures: WebhookFigures) -> None:
    port = _free_port()
    jobs = int(LATENCY_RATE * LATENCY_SECONDS)
    endpoint = Endpoint(jobs)
    app = web.Application()
    app.router.add_post("/hook", endpoint.hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config, log_file, settings = setup.config("webhooks-latency")
    with config.open("a", encoding="utf-8") as file:
        file.write(_sink_section(port))
    try:
        with RunnerDaemon(config, log_file, setup.folder / "webhooks-latency.out") as daemon:
            await asyncio.to_thread(daemon.wait_for_line, "delivering webhooks", TIMEOUT_S)
            async with await Client.connect(settings) as client:
                step = 0.05
                per_step = max(1, int(LATENCY_RATE * step))
                began = time.monotonic()
                for n in range(0, jobs, per_step):
                    await client.enqueue_many([client.new_job("noop") for _ in range(per_step)])
                    await asyncio.sleep(
                        max(0.0, began + (n // per_step + 1) * step - time.monotonic())
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(endpoint.all_in.wait(), 30)
            await asyncio.to_thread(daemon.stop, TIMEOUT_S)
        figures.expected = jobs
    finally:
        await runner.cleanup()
    figures.delivered = len(endpoint.event_ids)
    figures.latency_ms = _timings(endpoint.ages_ms)


def measure(
    servers: EmbeddedServers, folder: Path, jobs: int = THROUGHPUT_JOBS, rounds: int = ROUNDS
) -> WebhookFigures:
    print("measuring webhooks (throughput with the endpoint down; delivery latency) ...",
          flush=True)  # fmt: skip
    figures = WebhookFigures()
    setup = Setup(servers.redis_url, servers.database_url, folder)
    # Latency first: after the throughput runs, their 200,000 jobs' history and
    # trimming still load the servers for a while.
    print(f"  latency: {LATENCY_RATE} jobs/s for {LATENCY_SECONDS:g} s, endpoint healthy ...",
          flush=True)  # fmt: skip
    asyncio.run(_latency_run(setup, figures))
    throughput_phase(setup, figures, jobs, rounds)
    return figures


def render(f: WebhookFigures) -> str:
    lat = f.latency_ms
    return "\n".join([
        "webhooks: a sink POSTing every terminal transition",
        f"  no-op throughput    no sink {statistics.median(f.rate_off):,.0f} jobs/s"
        f"  endpoint down {statistics.median(f.rate_down):,.0f} jobs/s  (medians of"
        f" {f.rate_off} and {f.rate_down}); cost {f.cost:.1%}",
        f"  transition to delivery (healthy, {LATENCY_RATE} jobs/s)  p50 {lat['p50']:.1f} ms"
        f"  p99 {lat['p99']:.1f} ms  max {lat['max']:.1f} ms  ({f.delivered:,} of"
        f" {f.expected:,} delivered)",
    ])  # fmt: skip


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-webhooks-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    servers = EmbeddedServers(folder / "servers", durable=False)
    try:
        servers.start_redis()
        servers.start_postgres()
        figures = measure(servers, folder)
    finally:
        servers.stop()
    shutil.rmtree(folder, ignore_errors=True)
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
