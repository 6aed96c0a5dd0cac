"""The dashboard in a real headless Chromium, on a real daemon and a real `runner web`.

Everything is the real thing: the session's Redis and PostgreSQL, a daemon
process running the jobs, `python -m runner web` serving the API and the page,
and Chromium driven over the DevTools protocol with real clicks. The test also
takes a screenshot of each page: into the test's own folder, or, with
RUNNER_SCREENSHOTS set (`make screenshots`), into that folder: the README's come
from there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.client.client import Client
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, cli, wait_for_history
from tests.web.browser import Browser
from tests.web.process import WebProcess

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-test-token-0123456789"
XSS = "<script>window.pwned=1</script>"
STATES = ("scheduled", "running", "retrying", "paused", "succeeded", "failed", "cancelled")


@pytest.fixture
def config(daemon_config: Callable[..., Path]) -> Path:
    return daemon_config(
        web={"token": TOKEN},
        tasks__sleep_async={"target": "tests.tasks:sleep_async", "kind": "async",
                            "timeout": "60s"},
        cron__every_minute={"schedule": "* * * * *", "task": "echo"},
        cron__nightly={"schedule": "30 2 * * *", "timezone": "Europe/Paris", "task": "echo"},
    )  # fmt: skip


@pytest.fixture
def daemon(config: Path, spawn: Callable[..., DaemonProcess]) -> DaemonProcess:
    process = spawn(config)
    process.wait_ready()
    return process


@pytest.fixture
def web_url(config: Path) -> Iterator[str]:
    process = WebProcess(config, "--listen", "127.0.0.1:0")
    try:
        yield process.url()
    finally:
        process.stop()


def _expected_counts(status: dict[str, Any]) -> dict[str, str]:
    """What the overview must show, keyed as its data-count attributes."""
    counts = {
        "running": str(status["running"]),
        "due": str(sum(status["due"].values())),
        "waiting": str(sum(status["waiting"].values())),
        "daemons": str(len(status["daemons"])),
    }
    counts.update({f"state:{s}": str(n) for s, n in status["states"].items()})
    for task, states in status["tasks"].items():
        counts.update({f"task:{task}:{s}": str(states.get(s, 0)) for s in STATES})
    return counts


SHOWN_COUNTS = (
    "Object.fromEntries([...document.querySelectorAll('[data-count]')]"
    ".map(e => [e.dataset.count, e.textContent]))"
)


async def _overview_matches_status(browser: Browser, config: Path) -> dict[str, str]:
    """Wait until the self-refreshing overview shows what `runner status --json` says
    (asked again if the system moved meanwhile)."""
    shown: dict[str, str] = {}
    for _ in range(3):
        done = cli("status", "--json", config=config)
        assert done.returncode == 0, done.stderr
        expected = _expected_counts(json.loads(done.stdout))
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            shown = await browser.evaluate(SHOWN_COUNTS)
            states_shown = {k for k in shown if k.startswith("state:")}
            states_expected = {k for k in expected if k.startswith("state:")}
            if states_shown == states_expected and all(
                shown.get(k) == v for k, v in expected.items()
            ):
                return expected
            await _sleep(0.2)
    raise AssertionError(f"overview {shown} never matched runner status {expected}")


async def _sleep(seconds: float) -> None:
    import asyncio  # noqa: PLC0415  # one use, in an async helper

    await asyncio.sleep(seconds)


async def test_dashboard_shows_the_system_and_acts_on_it(
    config: Path, daemon: DaemonProcess, web_url: str, browser: Browser, client: Client,
    pg: PgStore, tmp_path: Path,
) -> None:  # fmt: skip
    """The overview's counts equal `runner status --json`; a job's args holding a
    script show as text; a request without the token is refused
    (401) and the page says so; with the token, Cancel on a running job ends it
    cancelled in Redis and on the page. Screenshots of each page are written."""
    shots = Path(os.environ.get("RUNNER_SCREENSHOTS") or tmp_path)
    done = [await client.enqueue("echo", args=[i]) for i in range(4)]
    xss = await client.enqueue("echo", args=[XSS], kwargs={"note": "<b>bold?</b>"})
    running = await client.enqueue("sleep_async", args=[30])
    later = await client.enqueue("sleep_async", args=[1], delay=1800)
    broken = await client.enqueue("bad_result")
    for job_id in [*done, xss]:
        await wait_for_history(pg, job_id, "succeeded")
    await wait_for_history(pg, running, "running")
    await wait_for_history(pg, later, "scheduled")
    await wait_for_history(pg, broken, "failed")

    # Overview: the same figures as the CLI, refreshed by the page itself.
    await browser.goto(web_url)
    await browser.wait_for("document.body.dataset.loaded")
    expected = await _overview_matches_status(browser, config)
    # (the every-minute schedule may add an echo job meanwhile)
    assert int(expected["state:succeeded"]) >= 5 and expected["running"] == "1"
    await browser.wait_for("document.querySelectorAll('svg.chart rect').length > 0")
    await browser.screenshot(shots / "overview.png")

    # Job list: every job, linked.
    await browser.goto(f"{web_url}#/jobs")
    await browser.wait_for(f"!!document.querySelector('a[href=\"#/jobs/{running}\"]')")
    await browser.screenshot(shots / "jobs.png")

    # Markup in args is shown as text (test_dashboard_views.py tries every field with
    # the CSP out of the way); the CSP is the second line of defence.
    await browser.goto(f"{web_url}#/jobs/{xss}")
    args = await browser.wait_for("document.querySelector('[data-field=args]')?.textContent")
    assert XSS in args
    assert "<b>bold?</b>" in await browser.evaluate("document.body.innerText")
    csp = await browser.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp
    assert await browser.evaluate("document.querySelectorAll('main script, main b').length") == 0

    # Without the token a change is refused, and the page shows the API's refusal.
    await browser.goto(f"{web_url}#/jobs/{later}")
    await browser.click("button[data-action=pause]")
    refusal = await browser.wait_for(
        "(() => { const n = document.getElementById('notice');"
        " return !n.hidden && n.textContent.includes('401') && n.textContent; })()"
    )
    assert "Refused" in refusal and "token" in refusal
    status = await browser.evaluate(
        f"fetch('/api/jobs/{later}/cancel', {{method: 'POST'}}).then(r => r.status)"
    )
    assert status == 401
    assert (await client.get(later)).state == "scheduled"

    # With the token (typed in, never shown back), Cancel ends the running job.
    await browser.goto(f"{web_url}#/jobs/{running}")
    await browser.wait_for(
        "document.querySelector('[data-field=state]')?.textContent === 'running'"
    )
    await browser.type("#token-input", TOKEN)
    await browser.click("#token-form button[type=submit]")
    await browser.wait_for("!document.getElementById('token-set').hidden")
    assert await browser.evaluate("document.getElementById('token-input').value") == ""
    assert TOKEN not in await browser.evaluate("document.documentElement.outerHTML")
    await browser.click("button[data-action=cancel]")
    await browser.wait_for(
        "document.querySelector('[data-field=state]')?.textContent === 'cancelled'"
    )
    assert (await client.get(running)).state == "cancelled"
    await wait_for_history(pg, running, "cancelled")
    await browser.wait_for(
        "[...document.querySelectorAll('ol.timeline li')].at(-1)?.className === 's-cancelled'"
    )
    await browser.screenshot(shots / "job.png")

    # Cron: every schedule with its next fires.
    await browser.goto(f"{web_url}#/cron")
    await browser.wait_for("document.body.innerText.includes('nightly')")
    await browser.screenshot(shots / "cron.png")

    assert browser.errors == []
