"""The overview's Webhooks section in a real headless Chromium, on a real daemon and
`runner web`: each sink's dead letters counted, and sent again with its button."""

from __future__ import annotations

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
    await _use_token(browser)
    button = "button[data-action='replay:app']"
    await browser.click(button)
    await browser.click(button)
    await browser.wait_for(f"{DEAD} === '0'", timeout=20)
    assert (await store.sink("app").summary())["dead"] == 0
    assert browser.errors == []
