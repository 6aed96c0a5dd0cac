"""Opening Redis and Postgres from the settings, embedded servers included.

With a URL missing, `runner run` starts the embedded server for it under the
configured folder; every other command finds the one a running daemon started.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from runner.config.settings import Settings
from runner.servers.embedded import EmbeddedServers
from runner.store import Keys, PgStore, RedisStore, redis_client


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


@dataclass
class Connections:
    redis_store: RedisStore
    pg_store: PgStore
    redis_url: str = field(default="", repr=False)  # for services that open their own

    @classmethod
    async def open(cls, settings: Settings, redis_url: str, database_url: str) -> Connections:
        redis = redis_client(redis_url, settings.redis_cluster)
        store = RedisStore(
            redis,
            Keys(settings.key_prefix),
            int(settings.keep_finished * 1000),
            settings.wait_replicas,
        )
        try:
            await store.ping()
            await store.check_scripts()
            pg = await PgStore.connect(database_url)
        except BaseException:
            await store.close()
            raise
        return cls(store, pg, redis_url)

    async def close(self) -> None:
        """Close both; a server that is down by now must not turn a clean stop into
        an error."""
        with contextlib.suppress(Exception):
            await self.pg_store.close()
        with contextlib.suppress(Exception):
            await self.redis_store.close()
