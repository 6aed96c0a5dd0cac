"""The dashboard's Live page in a real headless Chromium, on a real daemon and a real
`runner web`: transitions appear as they happen, as text, and Pause holds the list."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.servers.embedded import free_port
from tests.daemon.process import DaemonProcess
from tests.web.browser import Browser
from tests.web.process import WebProcess

TOKEN = "live-page-test-token-0123456789"
XSS = "<img src=x id=pwned>"
LIVE = "document.querySelector('[data-live]')?.dataset.live"


def _row(job_id: str, state: str) -> str:
    return f'!!document.querySelector(\'#live-rows tr[data-job="{job_id}"][data-state="{state}"]\')'


async def test_the_live_page_shows_jobs_enqueued_after_it_opened(
    daemon_config: Callable[..., Path], dashboard: Callable[[Path], str],
    browser: Browser, client: Client, tmp_path: Path,
) -> None:  # fmt: skip
    """Opened first, the page shows each job enqueued afterwards move from new to
        succeeded, newest on top, its result as text; paused, it holds new rows back
        until resumed; the connection state is shown. A screenshot is written (see
    test_dashboard.py)."""
    url = dashboard(daemon_config(web={"token": TOKEN}))
    await browser.goto(f"{url}#/live")
    await browser.wait_for("document.querySelector('[data-live]')?.dataset.live === 'live'")
    first = await client.enqueue("echo", [XSS], job_id="live-1")
    await browser.wait_for(_row(first, "scheduled"))
    await browser.wait_for(_row(first, "succeeded"))
    assert await browser.evaluate("document.querySelector('#live-rows tr').dataset.state") == (
        "succeeded"
    )  # newest on top
    text = await browser.evaluate("document.getElementById('live-rows').innerText")
    assert XSS in text and "echo" in text
    assert await browser.evaluate("document.querySelectorAll('main img, #pwned').length") == 0

    await browser.click("button[data-action=pause-view]")
    held = await client.enqueue("echo", job_id="live-2")
    await browser.wait_for("document.body.innerText.includes('paused: 3 new')")
    assert not await browser.evaluate(_row(held, "scheduled"))
    await browser.click("button[data-action=resume-view]")
    await browser.wait_for(_row(held, "succeeded"))
    await browser.screenshot(Path(os.environ.get("RUNNER_SCREENSHOTS") or tmp_path) / "live.png")
    assert browser.errors == []


async def test_the_live_page_resumes_where_it_was_after_the_server_restarts(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess],
    browser: Browser, client: Client,
) -> None:  # fmt: skip
    """`runner web` stops while the page is open and jobs go on running; started again
    on the same address, the page reconnects by itself with the id of the last event
    it had, and shows every transition of the gap once, none of those before again."""
    config = daemon_config(web={"token": TOKEN})
    spawn(config).wait_ready()
    address = f"127.0.0.1:{free_port()}"
    server = WebProcess(config, "--listen", address)
    try:
        await browser.goto(f"{server.url()}#/live")
        await browser.wait_for(f"{LIVE} === 'live'")
        before = await client.enqueue("echo", ["before"], job_id="gap-before")
        await browser.wait_for(_row(before, "succeeded"))
        server.stop()
        await browser.wait_for(f"{LIVE} !== 'live'")
        during = await client.enqueue("echo", ["during"], job_id="gap-during")
        await client.wait(during, timeout=10)
        server = WebProcess(config, "--listen", address)
        server.url()
        await browser.wait_for(_row(during, "succeeded"), timeout=20)
        await browser.wait_for(f"{LIVE} === 'live'")
        for job_id in (before, during):
            for state in ("scheduled", "running", "succeeded"):
                shown = f'#live-rows tr[data-job="{job_id}"][data-state="{state}"]'
                assert await browser.evaluate(f"document.querySelectorAll('{shown}').length") == 1
        assert browser.errors == []
    finally:
        server.stop()
