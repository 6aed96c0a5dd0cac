"""A daemon keeps the history bounded: its keeper's first pass runs at start, and a
reload hands it a new `[history] keep`."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess
from tests.store.postgres.test_history import old_and_new_history


async def test_daemon_drops_old_history_at_start_and_reloads_keep(
    pg: PgStore,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    """With keep = 30 days, the daemon's first pass logs one line naming the day it
    dropped and the old finished jobs it removed; a reload to "forever" is applied."""
    await old_and_new_history(pg, time.time())
    daemon = spawn(daemon_config(history={"keep": "30d"}))
    line = daemon.wait_for(lambda line: line.get("event") == "history upkeep")
    assert line["jobs_removed"] == 5 and len(line["partitions_dropped"]) == 1
    assert line["level"] == "info" and line["keep_s"] == 30 * 86_400
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_jobs WHERE id LIKE 'old-%'") == 4
    daemon_config(history={"keep": "forever"})
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for(lambda line: line.get("event") == "config reloaded", timeout=10)
    assert "keep_history" in reloaded["changed"]
