"""The overview's Webhooks section in a real headless Chromium, on a real daemon and
`runner web`: each sink's dead letters counted, and sent again with its button."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runner.store import RedisStore
from tests.notify.test_replay import SINK, dead_letters
from tests.web.browser import Browser
from tests.web.test_dashboard_views import TOKEN, Dashboard, _use_token, _visit

DEAD = "document.querySelector('[data-count=\"webhook:app:dead\"]')?.textContent"


async def test_the_overview_shows_dead_letters_and_replays_them(
    daemon_config: Callable[..., Path], dashboard: Dashboard, browser: Browser,
    store: RedisStore,
) -> None:  # fmt: skip
    """A sink with dead letters is listed with their count; its replay button (pressed
    twice: it asks for confirmation) sends them all again."""
    config = daemon_config(web={"token": TOKEN}, notify__app=SINK)
    url = dashboard(config)
    await dead_letters(store, "a:3", "b:3")
    await _visit(browser, url, f"{DEAD} === '2'")
    loaded = await browser.evaluate("document.body.dataset.loaded")
    await _use_token(browser)  # its refresh redraws the overview: press after that
    await browser.wait_for(f"document.body.dataset.loaded !== {json.dumps(loaded)}")
    button = "button[data-action='replay:app']"
    await _press_twice(browser, button)
    await browser.wait_for(f"{DEAD} === '0'", timeout=20)
    assert (await store.sink("app").summary())["dead"] == 0
    assert browser.errors == []


async def _press_twice(browser: Browser, button: str) -> None:
    """Arm the two-step button, then press it. The arming belongs to the request, not
    to the element: a refresh that redraws the button in between keeps it armed."""
    await browser.click(button)
    await browser.wait_for(
        f"document.querySelector({button!r})?.textContent.includes('press again')"
    )
    await browser.click(button)
