"""Markup in every field a user or an operator chooses, shown by the dashboard in a
real headless Chromium, on a real daemon and `runner web`: it stays text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from redis.asyncio import Redis

from runner.client import Client
from runner.config import Settings, TaskSettings
from runner.store.pg_store import PgStore
from tests.daemon.process import wait_for_history
from tests.web.browser import Browser

TOKEN = "dashboard-test-token-0123456789"
Dashboard = Callable[[Path], str]
LOADED = "document.body.dataset.loaded"


async def _visit(browser: Browser, url: str, ready: str) -> None:
    """Open a view and wait until it has drawn what `ready` (an expression) looks for."""
    await browser.goto(url)
    await browser.wait_for(LOADED)
    await browser.wait_for(ready)


XSS_TASK = "<img src=x onerror=pwn('task')>"
XSS_CRON = "<img src=x onerror=pwn('cron')>"
XSS_ID = '<img/src="x"onerror="pwn(\'id\')">'
XSS_TEXT = "<img src=x onerror=pwn('args-and-error')>"
# Before the page's own scripts: a pwn() for the payloads to call, and a record of
# every element that appears with an image or an event-handler attribute.
WATCH = r"""
window.pwned = [];
window.pwn = (where) => window.pwned.push(where);
window.planted = [];
new MutationObserver((records) => {
  for (const record of records) {
    const nodes = record.type === "attributes" ? [record.target] : [...record.addedNodes];
    for (const node of nodes) {
      if (node.nodeType !== 1) continue;
      for (const e of [node, ...node.querySelectorAll("*")]) {
        if (e.tagName === "IMG" || [...e.attributes].some((a) => a.name.startsWith("on")))
          window.planted.push(e.outerHTML.slice(0, 200));
      }
    }
  }
}).observe(document, { childList: true, subtree: true, attributes: true });
"""


async def test_markup_in_every_field_stays_text(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    settings: Settings, redis: Redis, pg: PgStore,
) -> None:  # fmt: skip
    """An <img onerror=...> in a job's id, its args, its error text, a task's name and
    a cron schedule's name is shown as that text on every view, and the page never
    makes an element of it: no image appears, no handler runs. The page's CSP is
    bypassed here, so a leak would run, and the test sees what the page's own code
    does rather than what the CSP stops."""
    config = daemon_config(
        web={"token": TOKEN},
        **{f'tasks."{XSS_TASK}"': {"target": "tests.tasks:fail", "kind": "io"}},
        **{f'cron."{XSS_CRON}"': {"schedule": "30 2 * * *", "task": XSS_TASK}},
    )
    url = dashboard(config)
    xss_task = TaskSettings(name=XSS_TASK, target="tests.tasks:fail", kind="io")
    client = Client(replace(settings, tasks={**settings.tasks, XSS_TASK: xss_task}), redis, pg)
    job = await client.enqueue(XSS_TASK, args=[XSS_TEXT], job_id=XSS_ID)
    await wait_for_history(pg, job, "failed")
    await browser.ignore_csp()
    await browser.before_each_page(WATCH)

    shows = "document.body.innerText.includes({!r})".format
    views = (
        (url, shows(XSS_TASK)),
        (f"{url}#/jobs", f"{shows(XSS_ID)} && {shows(XSS_TASK)}"),
        (f"{url}#/jobs?task={quote(XSS_TASK)}", shows(XSS_ID)),
        (
            f"{url}#/jobs/{quote(XSS_ID, safe='')}",
            f"{shows(XSS_TEXT)} && {shows(XSS_ID)} && {shows(XSS_TASK)}",
        ),
        (f"{url}#/cron", f"{shows(XSS_CRON)} && {shows(XSS_TASK)}"),
    )
    for view, shown in views:
        await browser.goto("about:blank")
        await _visit(browser, view, f"window.planted.length || window.pwned.length || ({shown})")
        found = await browser.evaluate(
            "[window.pwned, window.planted, document.querySelectorAll('img, [onerror]').length]"
        )
        assert found == [[], [], 0], (view, found)
        assert await browser.evaluate(shown), view
        error = await browser.evaluate("document.querySelector('[data-field=error]')?.textContent")
        assert error is None or XSS_TEXT in error
    assert browser.errors == []
