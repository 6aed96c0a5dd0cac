"""The dashboard's limits in a real headless Chromium, on a real daemon and `runner
web`: per limited task, what runs against its cap, what waits on each limit, its
busiest keys, and the rate it starts at now, counted between two polls."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import load_settings
from tests.web.browser import Browser

TASKS = {
    "tasks__keyed": {"target": "tests.tasks:keyed_sleep", "kind": "async", "concurrency": 1,
                     "concurrency_key": "args.0"},
    "tasks__paced": {"target": "tests.tasks:noted_sleep", "kind": "async", "rate": "4/s"},
}  # fmt: skip


def _cell(task: str, figure: str) -> str:
    return f"document.querySelector('[data-count=\"limit:{task}:{figure}\"]')?.textContent"


async def test_the_overview_shows_each_limit_and_the_rate_now(
    daemon_config: Callable[..., Path], dashboard: Callable[[Path], str], browser: Browser
) -> None:
    config = daemon_config(**TASKS)
    url = dashboard(config)
    async with await Client.connect(load_settings(config, env={})) as client:
        await client.enqueue_many([client.new_job("keyed", ["big", f"b{n}", 60_000])
                                   for n in range(4)])  # fmt: skip
        await client.enqueue_many([client.new_job("paced", [f"p{n}", 1]) for n in range(200)])
    await browser.goto(url)
    await browser.wait_for("document.body.dataset.loaded")
    await browser.wait_for(f"{_cell('keyed', 'cap')} === '3'", timeout=15)
    assert await browser.evaluate(_cell("keyed", "running")) == "1 (≤ 1 a key)"
    keys = await browser.evaluate(
        "document.querySelector('[data-limit-key=\"keyed:big\"]').textContent"
    )
    assert keys == "big: 1 running, 3 waiting"
    assert int(await browser.evaluate(_cell("paced", "rate"))) > 0
    rate = await browser.wait_for(
        f"/\\/s$/.test({_cell('paced', 'rate_now')}) && {_cell('paced', 'rate_now')}", timeout=15
    )
    assert re.fullmatch(r"\d+\.\d/s", rate) and 2.0 <= float(rate[:-2]) <= 6.0, rate
