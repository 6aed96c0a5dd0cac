"""Fixtures of the daemon tests: servers of their own, which a test may stop."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.store import PgStore


@pytest.fixture
async def own_postgres() -> AsyncIterator[EmbeddedServers]:
    """A private PostgreSQL this test may stop and start (never the shared one)."""
    servers = EmbeddedServers(Path(tempfile.mkdtemp(prefix="runner-outage-")), durable=False)
    await asyncio.to_thread(servers.start_postgres)
    pg = await PgStore.connect(servers.database_url)
    await pg.migrate()
    await pg.close()
    yield servers
    servers.stop()
