"""Run a real daemon in this process until its work is done (drain mode)."""

from __future__ import annotations

import asyncio
from typing import Any

from runner.config import Settings
from runner.connections import Connections
from runner.daemon import Daemon
from runner.store.pg_store import PgStore
from runner.tasks import TaskRegistry


async def drain(settings: Settings, timeout: float = 30.0) -> Daemon:
    """Serve until nothing is waiting, running or unrecorded; the daemon, for inspection."""
    assert settings.redis_url and settings.database_url
    conns = await Connections.open(settings, settings.redis_url, settings.database_url)
    try:
        daemon = Daemon(settings, TaskRegistry.from_settings(settings), conns)
        async with asyncio.timeout(timeout):
            await daemon.serve(asyncio.Event(), drain=True)
        return daemon
    finally:
        await conns.close()


async def history(pg: PgStore, job_id: str) -> list[dict[str, Any]]:
    return await pg.job_history(job_id)


def states(events: list[dict[str, Any]]) -> list[str]:
    return [e["to_state"] for e in events]
