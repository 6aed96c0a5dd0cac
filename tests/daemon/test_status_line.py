"""A running daemon's own status: its note in `runner status`, and paused tasks and
maintenance mode in its sd_notify STATUS line."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner import __version__
from runner.store.redis.keys import Keys
from tests.daemon.process import DaemonProcess, cli
from tests.daemon.test_service import NotifySocket


def _status_with(notify: NotifySocket, part: str, after: float, timeout: float = 15.0) -> str:
    """The first STATUS= sent after `after` that contains `part` (sent every 2 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, message in list(notify.messages):
            fields = [f for f in message.split("\n") if f.startswith("STATUS=")]
            if at >= after and fields and part in fields[0]:
                return fields[0]
        time.sleep(0.05)
    raise AssertionError(f"no STATUS with {part!r}; got {notify.messages[-5:]}")


def _ok(*args: str, config: Path) -> str:
    done = cli(*args, config=config)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_status_line_shows_pauses_and_status_shows_the_daemon(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    redis: Redis,
    keys: Keys,
    tmp_path: Path,
) -> None:
    """The STATUS line names paused tasks and maintenance mode within a refresh of
    either changing on any host, and drops them once resumed; `runner status` shows
    the daemon's host, pid, start and version; a stopped daemon's note is removed."""
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        config = daemon_config()
        daemon = spawn(config, {"NOTIFY_SOCKET": str(notify.path)})
        me = daemon.wait_ready()["daemon"]
        assert "paused" not in _status_with(notify, "running", 0)
        [details] = json.loads(_ok("status", "--json", config=config))["daemon_details"]
        assert (details["id"], details["pid"], details["version"]) == (
            me, daemon.proc.pid, __version__
        )  # fmt: skip
        assert details["host"] == socket.gethostname() and details["started"] is not None
        sent = time.monotonic()
        _ok("pause", "--task", "echo", config=config)
        _ok("pause", "--task", "sleep_io", config=config)
        assert _status_with(notify, "paused: echo, sleep_io", sent).endswith("sleep_io")
        sent = time.monotonic()
        _ok("pause", "--all", config=config)
        line = _status_with(notify, "MAINTENANCE", sent)
        assert line.endswith("; paused: echo, sleep_io; MAINTENANCE (nothing is claimed)")
        for task in ("--all", "--task=echo", "--task=sleep_io"):
            _ok("resume", task, config=config)
        line = _status_with(notify, "recorded", time.monotonic() + 0.1)
        assert "paused" not in line and "MAINTENANCE" not in line
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
        assert await redis.hget(keys.daemon_info, me) is None
    finally:
        notify.close()
