"""An API server per test, on the test's own Redis prefix and Postgres database; for
the dashboard's tests, a daemon and `runner web` as processes, and a Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runner.config.settings import Settings
from runner.web.app import make_app
from tests.daemon.process import DaemonProcess
from tests.web.browser import Browser
from tests.web.process import WebProcess

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Serve = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def serve(settings: Settings) -> AsyncIterator[Serve]:
    """Start the app with the test's settings (and any overrides); the token is TOKEN
    unless overridden, and the app believes it listens on [web] listen."""
    started: list[TestClient[Any, Any]] = []

    async def start(**overrides: Any) -> TestClient[Any, Any]:
        chosen = replace(settings, **{"web_token": TOKEN, **overrides})
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(chosen)))
        await client.start_server()
        started.append(client)
        return client

    yield start
    for client in started:
        await client.close()


@pytest.fixture
async def api(serve: Serve) -> TestClient[Any, Any]:
    return await serve()


@pytest.fixture
def dashboard(spawn: Callable[..., DaemonProcess]) -> Iterator[Callable[[Path], str]]:
    """Start a daemon and `runner web` on a config file; the dashboard's URL."""
    servers: list[WebProcess] = []

    def start(config: Path) -> str:
        spawn(config).wait_ready()
        servers.append(WebProcess(config, "--listen", "127.0.0.1:0"))
        return servers[-1].url()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    chrome = await Browser.start(tmp_path / "chromium")
    try:
        yield chrome
    finally:
        await chrome.close()
