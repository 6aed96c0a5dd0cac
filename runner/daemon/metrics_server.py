"""The metrics service: /metrics over HTTP on the daemon's own loop, and the gauges'
periodic refresh.

A scrape only renders the registry: the Redis figures (due jobs, oldest lag,
recorder backlog) and the servers' reachability are read every REFRESH_S here,
and the loop lag is the largest overshoot of this service's own short sleeps.
A listen address that cannot be bound is one clear error line: the daemon
runs on without the endpoint (metrics are for watching the work, not doing it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runner.client.limits import limited_tasks, limits_document
from runner.clock import Clock
from runner.config.settings import TaskSettings
from runner.config.values import split_listen
from runner.daemon.metrics import Metrics
from runner.logs import get_logger
from runner.store import PgStore, RedisStore, read_queue_gauges

log = get_logger()

REFRESH_S = 2.0
TICK_S = 0.1  # the loop-lag probe: a sleep this long that should end on time
CHECK_TIMEOUT_S = 1.0


def metrics_app(metrics: Metrics) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def start_server(metrics: Metrics, listen: str) -> web.AppRunner | None:
    """Bind and serve; None (after one error line) if the address cannot be bound."""
    runner = web.AppRunner(metrics_app(metrics), access_log=None, handle_signals=False)
    await runner.setup()
    host, port = split_listen(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        log.error(
            "metrics endpoint not started: cannot listen on the [metrics] listen address; "
            "the daemon runs on without /metrics (free the port or change [metrics] listen)",
            listen=listen, error=f"{type(exc).__name__}: {exc}",
        )  # fmt: skip
        return None
    log.info("metrics endpoint listening", listen=listen, path="/metrics")
    return runner


class GaugeRefresher:
    """Sets the gauges that need a server, and measures the event loop's lag."""

    def __init__(
        self,
        metrics: Metrics,
        redis: RedisStore,
        pg: PgStore,
        clock: Clock,
        tasks: Callable[[], Mapping[str, TaskSettings]] = dict,
    ) -> None:
        self.metrics = metrics
        self.redis = redis
        self.pg = pg
        self.clock = clock
        self.tasks = tasks  # the config's, as reloaded

    async def refresh(self) -> None:
        m = self.metrics
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                gauges = await read_queue_gauges(self.redis, self.clock.now_ms())
                limits = await self._limits()
        except Exception:  # unreachable or refusing: that is the figure
            m.store_up.labels("redis").set(0)
        else:
            m.store_up.labels("redis").set(1)
            for queue, figures in gauges.items():
                for kind, count in figures.due.items():
                    m.due.labels(kind, queue).set(count)
                for task in {*self.tasks(), *figures.blocked}:  # a task with none: 0
                    m.blocked.labels(task, queue).set(figures.blocked.get(task, 0))
                m.oldest_due_lag.labels(queue).set(figures.oldest_due_lag_ms / 1000)
                m.recorder_backlog.labels(queue).set(figures.unrecorded_entries)
            m.limits.update(limits)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await self.pg.ping()
        except Exception:  # unreachable or refusing: that is the figure
            m.store_up.labels("postgres").set(0)
        else:
            m.store_up.labels("postgres").set(1)

    async def _limits(self) -> dict[str, dict[str, Any]]:
        """The limited tasks' figures (none read while no task has a limit)."""
        tasks = self.tasks()
        if not limited_tasks(tasks):
            return {}
        return limits_document(tasks, await self.redis.limit_groups())

    async def run(self) -> None:
        while True:
            await self.refresh()
            worst = 0.0
            for _ in range(round(REFRESH_S / TICK_S)):
                began = time.monotonic()
                await asyncio.sleep(TICK_S)
                worst = max(worst, time.monotonic() - began - TICK_S)
            self.metrics.loop_lag.set(worst)


async def serve_metrics(metrics: Metrics, listen: str, refresher: GaugeRefresher) -> None:
    """The daemon's metrics service: runs until cancelled at shutdown."""
    runner = await start_server(metrics, listen)
    try:
        await refresher.run()
    finally:
        if runner is not None:
            await runner.cleanup()
