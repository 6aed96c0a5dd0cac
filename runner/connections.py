"""Opening Redis and Postgres from the settings, embedded servers included.

With a URL missing, `runner run` starts the embedded server for it under the
configured folder; every other command finds the one a running daemon started.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

from redis.asyncio import Redis

from runner.config import Settings
from runner.embedded import EmbeddedServers
from runner.store.keys import Keys
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore
from runner.store.scripts import check_scripts


def resolve_urls(
    settings: Settings, start_embedded: bool
) -> tuple[str, str, EmbeddedServers | None]:
    """The Redis and Postgres URLs to use, and the embedded servers this call started.

    Starting them raises EmbeddedBusy, having touched nothing, while another live process
    (a daemon started earlier) owns the embedded folder."""
    if settings.redis_url and settings.database_url:
        return settings.redis_url, settings.database_url, None
    if not start_embedded:
        found = EmbeddedServers.discover(settings.embedded_dir)
        return (
            settings.redis_url or found.redis_url,
            settings.database_url or found.database_url,
            None,
        )
    servers = EmbeddedServers(settings.embedded_dir)
    try:
        redis_url = settings.redis_url or servers.start_redis()
        database_url = settings.database_url or servers.start_postgres()
    except BaseException:
        servers.stop()
        raise
    return redis_url, database_url, servers


_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}


def redis_client(url: str) -> Redis:
    """A client tuned for the daemon's hot path.

    No socket timeout: redis-py wraps every send in asyncio.wait_for when one is
    set, a task per command; TCP keepalive finds a dead server (about 25 s)
    instead. encoding_errors="replace": bytes that are not UTF-8 (written by
    someone else) surface as a quarantined job, not as an exception in a reader.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        encoding_errors="replace",
        socket_connect_timeout=5,
        socket_timeout=None,
        socket_keepalive=True,
        socket_keepalive_options=_KEEPALIVE,
    )


@dataclass
class Connections:
    redis: Redis
    redis_store: RedisStore
    pg_store: PgStore

    @classmethod
    async def open(cls, settings: Settings, redis_url: str, database_url: str) -> Connections:
        redis = redis_client(redis_url)
        try:
            store = RedisStore(redis, Keys(settings.key_prefix), int(settings.keep_finished * 1000))
            await store.ping()
            await check_scripts(redis)
            pg = await PgStore.connect(database_url)
        except BaseException:
            await redis.aclose()
            raise
        return cls(redis, store, pg)

    async def close(self) -> None:
        """Close both; a server that is down by now must not turn a clean stop into
        an error."""
        with contextlib.suppress(Exception):
            await self.pg_store.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
