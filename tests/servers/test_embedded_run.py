"""`runner run` on embedded servers: one daemon per folder, and no server outlives it.

Each test runs real daemons on a folder of its own (the shared test servers are
not involved), and removes the folder afterwards with everything kept for it,
including the PostgreSQL data that root keeps under /var/tmp.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.servers.embedded import STATE_FILE, EmbeddedServers
from tests.daemon.process import DaemonProcess, cli, write_config

START_TIMEOUT = 90.0  # initdb and two servers, on a busy 2-core machine


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The test's embedded folder; removed at the end with its data and any leftover server."""
    root = tmp_path / "var"
    yield root
    EmbeddedServers(root).remove()


@pytest.fixture
def daemons(folder: Path) -> Iterator[Callable[[], DaemonProcess]]:
    """Starts `runner run` on `folder`'s embedded servers; SIGKILLs what still runs at the
    end (before `folder` cleans up, which it depends on)."""
    config = write_config(
        folder.parent / "dev.toml",
        {
            "embedded": {"dir": str(folder)},
            "daemon": {"shutdown_grace": "30s"},
            "log": {"format": "json"},
            "tasks.echo": {"target": "tests.tasks:echo", "kind": "async"},
            "tasks.sleep_io": {"target": "tests.tasks:sleep_io", "kind": "io"},
        },
    )
    started: list[DaemonProcess] = []

    def start() -> DaemonProcess:
        started.append(DaemonProcess(config))
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop()


def _server_pids(folder: Path) -> list[int]:
    """Processes working in the folder's Valkey or PostgreSQL data (the servers chdir there,
    PostgreSQL's own children included)."""
    homes = {str((folder / "valkey").resolve()), str((folder / "postgres").resolve())}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") in homes:
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile
                continue
    return found


def _wait_until_gone(folder: Path, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _server_pids(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _enqueue(config: Path, task: str, args: str) -> str:
    done = cli("enqueue", task, "--args", args, "--json", config=config)
    assert done.returncode == 0, done.stderr
    job_id: str = json.loads(done.stdout)["id"]
    return job_id


def test_a_second_run_on_the_same_folder_exits_and_leaves_the_first_alone(
    folder: Path, daemons: Callable[[], DaemonProcess]
) -> None:
    """A second `runner run` (a second `make run`) must not take the live daemon's servers
    for leftovers: it exits 1 with one line naming the folder, the live daemon's pid and
    what to do, and the first daemon keeps its servers and runs jobs."""
    first = daemons()
    first.wait_ready(START_TIMEOUT)
    state = json.loads((folder / STATE_FILE).read_text())
    second = daemons()
    assert second.wait_exit(30) == 1
    assert len(second.raw) == 1, second.output()
    line = second.raw[0]
    assert str(folder.resolve()) in line and f"pid {first.proc.pid}" in line, line
    assert "stop it first" in line and "[embedded] dir" in line, line
    assert json.loads((folder / STATE_FILE).read_text()) == state
    assert all(Path(f"/proc/{server['pid']}").exists() for server in state.values())
    config = folder.parent / "dev.toml"
    job_id = _enqueue(config, "echo", '["still here"]')
    first.wait_for(lambda line: line.get("event") == "job succeeded" and line["job_id"] == job_id)
    outages = [line for line in first.lines if "unavailable" in str(line.get("event"))]
    assert not outages and first.proc.poll() is None
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    assert _wait_until_gone(folder) == []


def test_a_second_stop_signal_stops_the_embedded_servers_too(
    folder: Path, daemons: Callable[[], DaemonProcess]
) -> None:
    """Ctrl-C twice while a job holds up the graceful stop: the daemon exits at once with
    code 1, and neither Valkey nor PostgreSQL (nor any of its processes) outlives it."""
    daemon = daemons()
    daemon.wait_ready(START_TIMEOUT)
    _enqueue(folder.parent / "dev.toml", "sleep_io", "[60]")
    daemon.wait_for(lambda line: line.get("event") == "job started")
    assert len(_server_pids(folder)) >= 2
    daemon.signal(signal.SIGINT)
    daemon.wait_for(lambda line: line.get("event") == "stop signal received")
    daemon.signal(signal.SIGINT)
    assert daemon.wait_exit(10) == 1
    assert _wait_until_gone(folder) == []


def test_the_servers_a_killed_daemon_left_are_stopped_by_the_next_start(
    folder: Path, daemons: Callable[[], DaemonProcess]
) -> None:
    """SIGKILL leaves Valkey and PostgreSQL running, and the lock goes with the daemon: the
    next `runner run` on the folder stops those leftovers and starts its own servers."""
    killed = daemons()
    killed.wait_ready(START_TIMEOUT)
    leftovers = json.loads((folder / STATE_FILE).read_text())
    killed.stop()  # SIGKILL
    assert all(Path(f"/proc/{server['pid']}").exists() for server in leftovers.values())
    next_one = daemons()
    next_one.wait_ready(START_TIMEOUT)
    assert not any(Path(f"/proc/{server['pid']}").exists() for server in leftovers.values())
    next_one.signal(signal.SIGTERM)
    assert next_one.wait_exit() == 0
    assert _wait_until_gone(folder) == []
