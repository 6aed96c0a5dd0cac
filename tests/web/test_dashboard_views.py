"""The dashboard's views in a real headless Chromium, on a real daemon and `runner web`:
one time format on every page, tasks listed before they have jobs, a phone-sized
window, a lateness chart that survives an enormous outlier, and markup in every
field a user or an operator chooses shown as text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings, TaskSettings, load_settings
from runner.jobs import rfc3339
from runner.store.postgres.store import PgStore
from tests.daemon.process import wait_for_history
from tests.web.browser import Browser

TOKEN = "dashboard-test-token-0123456789"
Dashboard = Callable[[Path], str]
RFC3339_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
# Every date or clock time on the page that is not RFC 3339 UTC with milliseconds,
# with some text around it to say where it is.
STRAY_TIMES = r"""(() => {
  const text = document.body.innerText.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "<ok>");
  return [...text.matchAll(/\d{4}-\d\d-\d\d|\d\d?:\d\d:\d\d/g)]
    .map((m) => text.slice(Math.max(0, m.index - 30), m.index + 30));
})()"""
LOADED = "document.body.dataset.loaded"


async def _visit(browser: Browser, url: str, ready: str) -> None:
    """Open a view and wait until it has drawn what `ready` (an expression) looks for."""
    await browser.goto(url)
    await browser.wait_for(LOADED)
    await browser.wait_for(ready)


def _job_shown(job_id: str) -> str:
    """An expression: the job page of `job_id` (not the one before it) is drawn."""
    return f"!!document.querySelector('h1')?.textContent.includes({job_id!r})"


async def _use_token(browser: Browser) -> None:
    await browser.type("#token-input", TOKEN)
    await browser.click("#token-form button[type=submit]")
    await browser.wait_for("!document.getElementById('token-set').hidden")


async def test_every_time_is_rfc3339_utc_with_milliseconds(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    client: Client, pg: PgStore,
) -> None:  # fmt: skip
    """The header clock and every time on every view read as the CLI's show and status
    print them (2026-12-07T03:42:26.123Z), in a browser whose own zone is +05:30: no
    time in the browser's zone, none without its zone, none cut to the second."""
    config = daemon_config(
        web={"token": TOKEN},
        cron__nightly={"schedule": "30 2 * * *", "timezone": "Europe/Paris", "task": "echo"},
    )
    url = dashboard(config)
    done = await client.enqueue("echo", args=[1])
    later = await client.enqueue("echo", delay=1800.123)
    await wait_for_history(pg, done, "succeeded")
    await wait_for_history(pg, later, "scheduled")
    due_at = (await client.get(later)).due_at_ms
    assert due_at is not None and due_at % 1000 != 0
    await browser.timezone("Asia/Kolkata")

    views = (
        (url, "!!document.querySelector('[data-count=running]')"),
        (f"{url}#/jobs", f"!!document.querySelector('a[href=\"#/jobs/{later}\"]')"),
        (
            f"{url}#/jobs/{done}",
            f"{_job_shown(done)} && document.querySelectorAll('ol.timeline li').length === 3",
        ),
        (f"{url}#/jobs/{later}", _job_shown(later)),
        (f"{url}#/cron", "document.body.innerText.includes('nightly')"),
    )
    for view, ready in views:
        await _visit(browser, view, ready)
        assert await browser.evaluate(STRAY_TIMES) == [], view
        if view.endswith(later):
            assert rfc3339(due_at) in await browser.evaluate("document.body.innerText")

    clock = await browser.evaluate("document.getElementById('updated').textContent")
    found = re.search(RFC3339_MS, clock)
    assert found, clock
    assert abs(datetime.fromisoformat(found[0]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert browser.errors == []


async def test_tasks_without_jobs_are_listed_and_can_be_paused(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser, client: Client,
) -> None:  # fmt: skip
    """Every task the config declares has its row on the overview, jobs or not, so a
    task can be paused before its first job arrives; the row then says so. The click
    counts even when the page redraws itself between press and release."""
    config = daemon_config(
        web={"token": TOKEN}, tasks__idle={"target": "tests.tasks:noop", "kind": "async"}
    )
    url = dashboard(config)
    await _visit(browser, url, "!!document.querySelector('[data-count=running]')")
    rows = await browser.wait_for(
        "(() => { const names = [...document.querySelectorAll('tr[data-task]')]"
        ".map((r) => r.dataset.task); return names.includes('idle') && names; })()"
    )
    assert sorted(rows) == ["bad_result", "echo", "idle", "sleep_io"]
    await _use_token(browser)
    at = await browser.press("button[data-action='pause-task:idle']")
    drawn = await browser.evaluate("document.body.dataset.loaded")
    await browser.evaluate("document.dispatchEvent(new Event('runner:refresh'))")
    await browser.wait_for(f"document.body.dataset.loaded !== {json.dumps(drawn)}")
    await browser.release(at)
    await browser.wait_for("!!document.querySelector(\"button[data-action='resume-task:idle']\")")
    assert "idle" in await client.paused()
    assert browser.errors == []


async def test_queues_on_the_overview_the_job_list_and_a_job(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    client: Client, pg: PgStore,
) -> None:  # fmt: skip
    """With a second queue, the overview has a row per queue; the job list filters by
    queue and shows each job's; a job's page names its queue and priority."""
    url = dashboard(daemon_config(web={"token": TOKEN}))
    mail = await client.enqueue("echo", [1], queue="mail", priority=4, delay=600)
    plain = await client.enqueue("echo", [2], delay=600)
    await wait_for_history(pg, mail, "scheduled")
    await wait_for_history(pg, plain, "scheduled")
    await _visit(browser, url, "!!document.querySelector('tr[data-queue]')")
    rows = await browser.evaluate(
        "[...document.querySelectorAll('tr[data-queue]')].map((t) => t.dataset.queue)"
    )
    assert rows == ["default", "mail"]
    await _visit(
        browser, f"{url}#/jobs?queue=mail", f"!!document.querySelector('a[href=\"#/jobs/{mail}\"]')"
    )
    listed = await browser.evaluate("[...document.querySelectorAll('table.jobs tbody tr')].length")
    assert listed == 1
    await _visit(browser, f"{url}#/jobs/{mail}", _job_shown(mail))
    text = await browser.evaluate("document.querySelector('dl.fields').innerText")
    assert "mail" in text and "priority" in text and "4" in text
    assert browser.errors == []


async def test_the_daemons_pools_show_threads_held_past_a_timeout(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser, redis: Redis,
) -> None:  # fmt: skip
    """The overview's daemon row shows each kind's slots, and the io threads still held
    by jobs past their timeout with the oldest one's job: why a queue waits."""
    config = daemon_config(
        web={"token": TOKEN}, pools={"io": 1},
        tasks__stuck={"target": "tests.tasks:sleep_io", "kind": "io", "timeout": "300ms"},
    )  # fmt: skip
    url = dashboard(config)
    job = await Client(load_settings(config, env={}), redis).enqueue("stuck", [20], job_id="s1")
    await _visit(browser, url, "!!document.querySelector('[data-count=running]')")
    shown = await browser.wait_for(
        "(() => { const io = document.querySelector('td.pools [data-kind=io]');"
        " return io && io.textContent.includes('held past timeout') ? io.textContent : null;"
        " })()",
        timeout=20,
    )
    assert shown.startswith("io 1/1 1 held past timeout"), shown
    title = await browser.evaluate(
        "document.querySelector('td.pools [data-kind=io] .badge').getAttribute('title')"
    )
    assert f"job {job} since " in title
    assert browser.errors == []


async def test_a_phone_sized_window(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    client: Client, pg: PgStore,
) -> None:  # fmt: skip
    """At 420 px wide no view scrolls sideways, the overview's cards wrap and each
    fits its content, and the token field can be reached, clicked and typed into."""
    config = daemon_config(
        web={"token": TOKEN},
        cron__nightly={"schedule": "30 2 * * *", "timezone": "Europe/Paris", "task": "echo"},
    )
    url = dashboard(config)
    job = await client.enqueue("echo", args=["a fairly long argument " * 8])
    await wait_for_history(pg, job, "succeeded")
    await browser.viewport(420, 860, mobile=True)

    views = (
        (url, "!!document.querySelector('[data-count=running]')"),
        (f"{url}#/jobs", f"!!document.querySelector('a[href=\"#/jobs/{job}\"]')"),
        (
            f"{url}#/jobs/{job}",
            f"{_job_shown(job)} && document.querySelectorAll('ol.timeline li').length === 3",
        ),
        (f"{url}#/cron", "document.body.innerText.includes('nightly')"),
    )
    for view, ready in views:
        await _visit(browser, view, ready)
        width = await browser.evaluate("[innerWidth, document.documentElement.scrollWidth]")
        assert width[1] <= width[0] == 420, (view, width)

    await _visit(browser, url, "!!document.querySelector('[data-count=running]')")
    cards = await browser.evaluate(
        "[...document.querySelectorAll('.card')].map((c) => { const r = c.getBoundingClientRect();"
        " return [c.textContent, r.left >= 0 && r.right <= innerWidth,"
        " c.scrollWidth <= c.clientWidth, Math.round(r.top)]; })"
    )
    assert cards and all(inside and fits for _, inside, fits, _ in cards), cards
    assert len({top for *_, top in cards}) > 1, "the cards do not wrap"
    reachable = await browser.evaluate(
        "(() => { const input = document.getElementById('token-input');"
        " const r = input.getBoundingClientRect(); const x = r.left + r.width / 2,"
        " y = r.top + r.height / 2; return r.left >= 0 && r.right <= innerWidth"
        " && document.elementFromPoint(x, y) === input; })()"
    )
    assert reachable
    await _use_token(browser)
    assert browser.errors == []


async def test_lateness_chart_with_one_enormous_outlier(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    client: Client, pg: PgStore,
) -> None:  # fmt: skip
    """A job due in the year 2000 starts some 27 years late. The lateness chart keeps
    the scale of the ordinary jobs, marks the outlier as clipped with its value in
    years and says so on the chart, and every label fits inside the chart."""
    url = dashboard(daemon_config(web={"token": TOKEN}))
    jobs = [await client.enqueue("echo", args=[i]) for i in range(5)]
    jobs.append(await client.enqueue("echo", args=["late"], at=datetime(2000, 1, 1, tzinfo=UTC)))
    for job in jobs:
        await wait_for_history(pg, job, "succeeded")
    await _visit(browser, url, "!!document.querySelector('svg[data-chart=lateness] .clipped')")

    chart = await browser.evaluate(
        "(() => { const svg = document.querySelector('svg[data-chart=lateness]');"
        " const width = svg.viewBox.baseVal.width;"
        " return { width, ymax: Number(svg.dataset.ymax),"
        "  labels: [...svg.querySelectorAll('text')].map((t) => { const b = t.getBBox();"
        "   return [t.textContent, b.x >= 0 && b.x + b.width <= width]; }),"
        "  clipped: [...svg.querySelectorAll('.clipped title')].map((t) => t.textContent),"
        "  note: svg.querySelector('.note')?.textContent }; })()"
    )
    assert all(inside for _, inside in chart["labels"]), chart["labels"]
    assert 0 < chart["ymax"] < 3_600_000, chart  # the ordinary jobs' scale, not 27 years'
    years = [float(m[1]) for t in chart["clipped"] if (m := re.search(r"([\d.]+) y\b", t))]
    assert years and max(years) > 20, chart  # p99 of its minute: most of the 27 years
    assert chart["note"] and "not to scale" in chart["note"], chart
    assert browser.errors == []


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
