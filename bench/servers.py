"""Private Valkey and PostgreSQL for one benchmark run on its own (`python -m bench.X`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runner.servers.embedded import EmbeddedServers


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
