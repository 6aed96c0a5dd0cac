"""The cost of metrics: /metrics scrape time at a million jobs, throughput on vs off.

Scrape: a database of its own gets ROWS jobs in runner_jobs (the listing's fill),
a daemon with [metrics] listen drains a batch of no-op jobs into it, and /metrics
is scraped every few milliseconds meanwhile (under load) and then at rest. A
scrape reads nothing from Postgres, so the table's size must not show.

Throughput: the no-op drain of bench/runner_side.py, alternately without and with
[metrics] listen (which also turns the per-job counts on), the median of each.

    .venv/bin/python -m bench.metrics            # on private servers of its own
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import listing
from bench.runner_daemon import RunnerDaemon, find_line, log_time, read_log
from bench.runner_side import Setup, _enqueue, _new_jobs
from bench.stats import percentile
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.migrate import migrate

ROWS = 1_000_000
SCRAPE_JOBS = 50_000  # drained while scraping: the daemon under load
THROUGHPUT_JOBS = 20_000
ROUNDS = 5  # throughput runs each way, their order swapped each round
SCRAPE_TARGET_MS = 50.0
COST_TARGET = 0.05
TIMEOUT_S = 180.0
DATABASE = "runner_metrics_bench"


@dataclass
class MetricsFigures:
    rows: int
    scrape_loaded_ms: dict[str, float] = field(default_factory=dict)
    scrape_idle_ms: dict[str, float] = field(default_factory=dict)
    body_bytes: int = 0
    rate_off: list[float] = field(default_factory=list)
    rate_on: list[float] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return 1 - statistics.median(self.rate_on) / statistics.median(self.rate_off)

    def targets(self) -> dict[str, bool]:
        worst = max(self.scrape_loaded_ms["p99"], self.scrape_idle_ms["p99"])
        return {
            f"/metrics scrape p99 < {SCRAPE_TARGET_MS:g} ms at {self.rows:,} jobs": worst
            < SCRAPE_TARGET_MS,
            f"metrics on cost < {COST_TARGET:.0%} of no-op throughput": self.cost < COST_TARGET,
        }

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "cost": round(self.cost, 4), "targets": self.targets()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_metrics(config: Path, port: int) -> None:
    with config.open("a", encoding="utf-8") as file:
        file.write(f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')


def _timings(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


async def _scrape_times(port: int, until: float, every: float) -> tuple[list[float], int]:
    """Scrape until `until` (monotonic); per scrape the ms from request to full body."""
    times, size = [], 0
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < until:
            began = time.perf_counter()
            try:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    body = await response.read()
            except aiohttp.ClientConnectionError:  # not listening yet
                await asyncio.sleep(0.05)
                continue
            times.append((time.perf_counter() - began) * 1000)
            size = len(body)
            await asyncio.sleep(every)
    return times, size


async def _fill(database_url: str, rows: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await listing.fill(conn, rows, listing.ListingFigures(rows))
    finally:
        await conn.close()


async def _create_database(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()


async def _drop_database(admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await admin.close()


def scrape_phase(servers: EmbeddedServers, folder: Path, figures: MetricsFigures) -> None:
    admin = servers.postgres_url("postgres")
    asyncio.run(_create_database(admin))
    try:
        database_url = servers.postgres_url(DATABASE)
        print(f"  filling runner_jobs with {figures.rows:,} rows ...", flush=True)
        asyncio.run(_fill(database_url, figures.rows))
        setup = Setup(servers.redis_url, database_url, folder)
        config, log_file, settings = setup.config("metrics-scrape")
        port = _free_port()
        _with_metrics(config, port)
        asyncio.run(_enqueue(settings, asyncio.run(_new_jobs(settings, SCRAPE_JOBS))))
        print(f"  scraping while {SCRAPE_JOBS:,} jobs drain, then at rest ...", flush=True)
        with RunnerDaemon(config, log_file, folder / "metrics-scrape.out") as daemon:
            daemon.wait_for_line("daemon ready", TIMEOUT_S)
            loaded, _ = asyncio.run(_scrape_times(port, time.monotonic() + 3.0, 0.01))
            time.sleep(3.0)  # drained by now, and the gauges refreshed
            idle, size = asyncio.run(_scrape_times(port, time.monotonic() + 3.0, 0.01))
            daemon.stop(TIMEOUT_S)
    finally:
        asyncio.run(_drop_database(admin))
    figures.scrape_loaded_ms = _timings(loaded)
    figures.scrape_idle_ms = _timings(idle)
    figures.body_bytes = size


def _drain_rate(setup: Setup, phase: str, metrics: bool, jobs: int) -> float:
    extra = f'\n[metrics]\nlisten = "127.0.0.1:{_free_port()}"\n' if metrics else ""
    return _drain_rate_with(setup, phase, extra, jobs)


def _drain_rate_with(setup: Setup, phase: str, extra: str, jobs: int) -> float:
    """Jobs per second of a daemon draining `jobs` no-op jobs, with `extra` TOML
    appended to its config (a section whose cost is measured)."""
    config, log_file, settings = setup.config(phase)
    with config.open("a", encoding="utf-8") as file:
        file.write(extra)
    asyncio.run(_enqueue(settings, asyncio.run(_new_jobs(settings, jobs))))
    output = setup.folder / f"{phase}.out"
    with RunnerDaemon(config, log_file, output, drain=True) as daemon:
        code = daemon.wait(TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"runner daemon exited with {code}; see {output}")
    lines = read_log(log_file)
    seconds = log_time(find_line(lines, "daemon stopped")) - log_time(
        find_line(lines, "daemon ready")
    )
    return round(jobs / seconds, 1)


def throughput_phase(
    servers: EmbeddedServers, folder: Path, figures: MetricsFigures, jobs: int, rounds: int
) -> None:
    setup = Setup(servers.redis_url, servers.database_url, folder)
    for i in range(rounds):
        # Swapped each round: whichever runs second meets a fuller stream and table,
        # which must not be charged to metrics.
        order = (False, True) if i % 2 == 0 else (True, False)
        names = " then ".join("on" if on else "off" for on in order)
        print(f"  throughput round {i + 1}/{rounds} ({jobs:,} no-op jobs, {names}) ...",
              flush=True)  # fmt: skip
        for on in order:
            rate = _drain_rate(setup, f"metrics-{'on' if on else 'off'}-{i}", on, jobs)
            (figures.rate_on if on else figures.rate_off).append(rate)


def measure(
    servers: EmbeddedServers, folder: Path, rows: int = ROWS,
    jobs: int = THROUGHPUT_JOBS, rounds: int = ROUNDS,
) -> MetricsFigures:  # fmt: skip
    """The metrics figures on running servers (the big table in a database of its own)."""
    print(f"measuring metrics (scrape at {rows:,} jobs; throughput on vs off) ...", flush=True)
    figures = MetricsFigures(rows)
    scrape_phase(servers, folder, figures)
    throughput_phase(servers, folder, figures, jobs, rounds)
    return figures


def render(f: MetricsFigures) -> str:
    loaded, idle = f.scrape_loaded_ms, f.scrape_idle_ms
    return "\n".join(
        [
            f"metrics: /metrics with {f.rows:,} jobs in runner_jobs ({f.body_bytes:,} bytes)",
            f"  scrape under load   p50 {loaded['p50']:.2f} ms  p99 {loaded['p99']:.2f} ms"
            f"  max {loaded['max']:.2f} ms  ({int(loaded['runs'])} scrapes)",
            f"  scrape at rest      p50 {idle['p50']:.2f} ms  p99 {idle['p99']:.2f} ms"
            f"  max {idle['max']:.2f} ms  ({int(idle['runs'])} scrapes)",
            f"  no-op throughput    off {statistics.median(f.rate_off):,.0f} jobs/s"
            f"  on {statistics.median(f.rate_on):,.0f} jobs/s  (medians of {f.rate_off} and"
            f" {f.rate_on}); cost {f.cost:.1%}",
        ]
    )


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-metrics-"))
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
