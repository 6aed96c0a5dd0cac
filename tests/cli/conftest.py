"""Fixtures that start real daemon processes and stop them whatever the test did."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.servers import Servers


@pytest.fixture
def daemon_config(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str
) -> Callable[..., Path]:
    def make(**sections: Any) -> Path:
        return daemon_config_file(
            tmp_path / "runner.toml", servers.redis_url, database_url, prefix, **sections
        )

    return make


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(config, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
