"""Run a real daemon in this process until its work is done (drain mode)."""

from __future__ import annotations

import asyncio
from typing import Any

from runner.config.settings import Settings
from runner.daemon.supervisor import Daemon
from runner.servers.connect import Connections
from runner.store.postgres.store import PgStore
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


def start_ms(claim: dict[str, Any]) -> float:
    """When a claimed job started, from its claim's event: claimed inside the daemon's
    lead, it was held `held_ms` after its claim (runner/daemon/lead.py)."""
    return float(claim["at_ms"]) + float(claim["detail"].get("held_ms", 0))


class Running:
    """A daemon serving in this process until `stop()` (for tests that watch it work)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        assert self.settings.redis_url and self.settings.database_url
        self.conns = await Connections.open(
            self.settings, self.settings.redis_url, self.settings.database_url
        )
        self.daemon = Daemon(self.settings, TaskRegistry.from_settings(self.settings), self.conns)
        self._task = asyncio.create_task(self.daemon.serve(self.stop_event))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_event.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 30)
        await self.conns.close()
