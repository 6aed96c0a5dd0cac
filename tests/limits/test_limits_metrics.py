"""The limits' metrics on a real daemon: per limited task (and its busiest keys), what
runs against the cap and what waits on each limit, in a valid exposition (promtool)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp

from runner.client.client import Client
from runner.config.settings import load_settings
from tests.daemon.metrics_run import free_port, promtool_check, scrape, total
from tests.daemon.process import DaemonProcess
from tests.waiting import eventually

TASKS = {
    "tasks__keyed": {"target": "tests.tasks:keyed_sleep", "kind": "async", "concurrency": 1,
                     "concurrency_key": "args.0"},
    "tasks__paced": {"target": "tests.tasks:noted_sleep", "kind": "async", "rate": "1/m"},
}  # fmt: skip


async def test_metrics_show_what_runs_against_each_limit_and_what_waits(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess]
) -> None:
    port = free_port()
    config = daemon_config(**TASKS, metrics={"listen": f"127.0.0.1:{port}"})
    spawn(config).wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        await client.enqueue_many([client.new_job("keyed", ["big", f"b{n}", 30_000])
                                   for n in range(4)])  # fmt: skip
        await client.enqueue_many([client.new_job("keyed", ["small", "s", 30_000])])
        await client.enqueue_many([client.new_job("paced", [f"p{n}", 1]) for n in range(3)])

        async def settled() -> bool:
            try:
                _, text = await scrape(port)
            except aiohttp.ClientConnectionError:
                return False  # ready is said before the endpoint listens

            return (
                total(text, "runner_limit_running", task="keyed") == 2
                and total(text, "runner_limit_waiting", task="keyed", reason="cap") == 3
                and total(text, "runner_limit_waiting", task="paced", reason="rate") == 2
            )

        await eventually(settled, timeout=20, what="the limits' gauges")
        _, text = await scrape(port)
        assert total(text, "runner_limit_key_running", task="keyed", key="big") == 1
        assert total(text, "runner_limit_key_waiting", task="keyed", key="big") == 3
        assert total(text, "runner_limit_rate_starts_total", task="paced") == 1
        checked = promtool_check(text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
