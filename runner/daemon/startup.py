"""Starting while a server is down: wait for Redis and Postgres, then migrate.

A daemon that is already running rides out an outage; one that starts during
it waits the same way instead of exiting: it says what it waits for in the log
and in systemd's STATUS=, tries again at least every second, and becomes
READY within a second of both servers answering. A server that refuses us for
good (wrong password, a script it rejects) is an error to fix, not to wait out.
"""

from __future__ import annotations

import asyncio
import contextlib

from runner.config.settings import Settings
from runner.daemon.resilience import Backoff
from runner.errors import StoreUnavailable
from runner.logs import get_logger
from runner.redact import redact_url
from runner.servers.connect import Connections
from runner.systemd import notify

log = get_logger()

LOG_EVERY = 10  # failed tries between two "still waiting" lines


async def connect_when_ready(
    settings: Settings, redis_url: str, database_url: str, stop: asyncio.Event
) -> Connections | None:
    """Connected and migrated stores, or None if asked to stop while waiting."""
    backoff = Backoff(first=0.1, cap=1.0)
    while not stop.is_set():
        try:
            return await _connect(settings, redis_url, database_url)
        except StoreUnavailable as exc:
            delay = backoff.next()
            url = redis_url if exc.server == "redis" else database_url
            notify(f"STATUS=waiting for {exc.server} at {redact_url(url)}: {exc}")
            if backoff.failures % LOG_EVERY == 1:
                log.warning(
                    f"waiting for {exc.server or 'a server'}", url=redact_url(url),
                    error=str(exc), tries=backoff.failures, retry_in_s=delay,
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
    return None


async def _connect(settings: Settings, redis_url: str, database_url: str) -> Connections:
    conns = await Connections.open(settings, redis_url, database_url)
    try:
        applied = await conns.pg_store.migrate()
        store = conns.redis_store
        renamed = await store.upgrade_hashes()
    except BaseException:
        await conns.close()
        raise
    if applied:
        log.info("schema migrated", applied=applied)
    if renamed:
        log.info("job hashes moved to the current layout", jobs=renamed)
    return conns
