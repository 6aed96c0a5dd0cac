"""A daemon started while a server is down waits for it, and is READY soon after.

Starting is no different from running through an outage: the daemon says what
it waits for, retries at least every second, and becomes ready within 2 s of
the server answering.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.servers.embedded import EmbeddedServers, _valkey_binary, free_port
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.real_servers import Servers


@pytest.fixture
async def stopped_postgres(own_postgres: EmbeddedServers) -> EmbeddedServers:
    """A private PostgreSQL, initialised and migrated, then stopped: the test starts it."""
    await asyncio.to_thread(own_postgres.stop_postgres)
    return own_postgres


async def test_ready_within_2s_of_postgres_coming_up(
    stopped_postgres: EmbeddedServers,
    servers: Servers,
    prefix: str,
    tmp_path: Path,
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Postgres down at start: the daemon waits (log line), then is ready < 2 s after."""
    assert stopped_postgres.postgres is not None
    port = stopped_postgres.postgres.port
    config = daemon_config_file(
        tmp_path / "runner.toml", servers.redis_url, stopped_postgres.database_url, prefix
    )
    daemon = spawn(config)
    waiting = daemon.wait_for(lambda line: line.get("event") == "waiting for postgres")
    assert "***" not in waiting["url"] and waiting["url"].endswith(f":{port}/runner")
    await asyncio.sleep(1.5)  # a few failed tries: the daemon must still be there
    assert daemon.proc.poll() is None
    await asyncio.to_thread(stopped_postgres.start_postgres, port=port)
    up = time.monotonic()
    await asyncio.to_thread(daemon.wait_ready, 10)
    assert time.monotonic() - up < 2.0


def test_ready_within_2s_of_redis_coming_up(
    servers: Servers,
    database_url: str,
    prefix: str,
    tmp_path: Path,
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Redis down at start: the daemon waits (log line), then is ready < 2 s after."""
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    config = daemon_config_file(tmp_path / "runner.toml", redis_url, database_url, prefix)
    daemon = spawn(config)
    daemon.wait_for(lambda line: line.get("event") == "waiting for redis")
    time.sleep(1.5)  # a few failed tries: the daemon must still be there
    assert daemon.proc.poll() is None
    args = [str(_valkey_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    valkey = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        up = time.monotonic()
        daemon.wait_ready(10)
        assert time.monotonic() - up < 2.0
    finally:
        daemon.stop()
        valkey.terminate()
        valkey.wait(10)
