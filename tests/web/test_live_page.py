"""The dashboard's Live page in a real headless Chromium, on a real daemon and a real
`runner web`: transitions appear as they happen, as text, and Pause holds the list."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from tests.web.browser import Browser

TOKEN = "live-page-test-token-0123456789"
XSS = "<img src=x id=pwned>"


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
