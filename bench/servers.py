"""Private Valkey and PostgreSQL for one benchmark run on its own (`python -m bench.X`),
and a database of its own for one phase of a run."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from runner.servers.embedded import EmbeddedServers
from runner.store import PgStore


@contextmanager
def private_servers(name: str, redis: bool = True) -> Iterator[tuple[EmbeddedServers, Path]]:
    """Throwaway servers in a folder of their own, and that folder; both gone after."""
    folder = Path(tempfile.mkdtemp(prefix=f"runner-bench-{name}-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    servers = EmbeddedServers(folder / "servers", durable=False)
    try:
        if redis:
            servers.start_redis()
        servers.start_postgres()
        yield servers, folder
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


def own_database(database_url: str, label: str, migrate: bool = False) -> str:
    """A new database beside `database_url`'s, for one phase of a run; `migrate`: with
    runner's schema (else its first daemon migrates it: a phase comparing an older
    runner must let that runner make its own schema).

    A daemon on a key prefix new to its database fills that prefix's retired ids
    from every job the database holds, once (runner/daemon/retired_ids.py): in a
    database the phases of a run share, that is every earlier phase's jobs, read
    and written to Redis while this phase's jobs run (20,000 of them took 0.56 s of
    a 0.69 s io run, 1.42x its floor against 1.15x on a database of its own). A
    deployment does that once in its life; a phase must not pay for the run's past.
    """
    name = "bench_" + re.sub(r"[^a-z0-9]+", "_", label.lower()) + f"_{secrets.token_hex(4)}"
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_create(database_url, name, url, migrate))
    return url


async def _create(database_url: str, name: str, url: str, migrate: bool) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    if not migrate:
        return
    store = await PgStore.connect(url, max_size=1)
    try:
        await store.migrate()
    finally:
        await store.close()
