"""A workflow's page in a real headless Chromium, on a real daemon and `runner web`:
the graph in layers (a wide group drawn as one box counting its jobs, the join and
the last step as boxes of their own, lines between them), a link to it from each of
its jobs' pages, and "Cancel all" (pressed twice) ending every job of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from runner import chain, group, step
from runner.client.client import Client
from runner.config.settings import load_settings
from tests.web.browser import Browser

TOKEN = "workflow-test-token-0123456789"
WIDE = 20  # more than a layer drawn job by job (workflow.js SPREAD)


def _text(selector: str) -> str:
    return f"document.querySelector('{selector}')?.textContent"


async def test_the_workflow_page_draws_the_graph_and_cancels_it_whole(
    daemon_config: Callable[..., Path],
    dashboard: Callable[[Path], str],
    browser: Browser,
    tmp_path: Path,
) -> None:
    config = daemon_config(web={"token": TOKEN},
                           tasks__echo={"target": "tests.tasks:echo", "kind": "async"})  # fmt: skip
    url = dashboard(config)
    flow = chain(group(step("echo", n, options={"delay": 600}) for n in range(WIDE)),
                 group(step("echo", "left"), step("echo", "right")))  # fmt: skip
    async with await Client.connect(load_settings(config, env={})) as client:
        workflow = await client.enqueue_workflow(flow, workflow_id="wf-page")
        last = workflow.job_ids[-1]
        await browser.goto(f"{url}#/jobs/{last}")
        link = await browser.wait_for(_text("[data-field=workflow]"))
        assert link == "wf-page"
        await browser.click("[data-field=workflow]")
        await browser.wait_for("!!document.querySelector('svg.graph')")
        assert await browser.evaluate(_text('[data-layer="0"] .name')) == f"{WIDE} jobs"
        assert await browser.evaluate(_text('[data-layer="0"] .sub')) == f"scheduled {WIDE}"
        nodes = await browser.evaluate(
            "[...document.querySelectorAll('svg.graph [data-node]')]"
            ".map(n => n.dataset.state + ' ' + n.querySelector('.name').textContent)"
        )
        assert sorted(nodes) == ["blocked :join", "blocked echo", "blocked echo"]
        assert await browser.evaluate("document.querySelectorAll('svg.graph line').length") == 3
        assert await browser.evaluate(_text('[data-count="wf:blocked"]')) == "blocked3"
        shots = Path(os.environ.get("RUNNER_SCREENSHOTS") or tmp_path)
        await browser.screenshot(shots / "workflow.png")

        await browser.type("#token-input", TOKEN)
        await browser.click("#token-form button[type=submit]")
        await browser.wait_for("!document.getElementById('token-set').hidden")
        await browser.click("button[data-action=workflow-cancel]")
        await browser.click("button[data-action=workflow-cancel]")  # the second press
        said = await browser.wait_for(
            "(() => { const n = document.getElementById('notice');"
            " return !n.hidden && n.textContent; })()"
        )
        assert f"cancel: workflow wf-page: {WIDE + 3} jobs" in said
        cancelled = _text('[data-count="wf:cancelled"]')
        await browser.wait_for(f"{cancelled} === 'cancelled{WIDE + 3}'")
        states = await client.store.job_states(workflow.job_ids)
        assert set(states.values()) == {"cancelled"}
    assert browser.errors == []
