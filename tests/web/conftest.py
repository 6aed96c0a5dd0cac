"""An API server per test, on the test's own Redis prefix and Postgres database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from runner.config import Settings
from runner.web.app import make_app

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
