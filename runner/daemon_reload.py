"""Applying a reloaded config to a running daemon (SIGHUP): what can change in place
changes, pools are resized for new jobs, and what needs a restart is only named."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from runner.config import Settings
from runner.cpu_pool import CpuPool
from runner.errors import ConfigError
from runner.executors import AsyncExecutor, ThreadExecutor
from runner.logs import get_logger, reopen_log_file, set_level
from runner.reload import NEEDS_RESTART, changed, load_new, restart_only
from runner.tasks import TaskRegistry

if TYPE_CHECKING:
    from runner.daemon import Daemon

log = get_logger()


async def reload_config(daemon: Daemon) -> None:
    """Re-read the config; apply what changed, or keep everything if it is invalid."""
    path = Path(daemon.settings.source)
    try:
        new, registry = await asyncio.to_thread(load_new, path)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload rejected: config invalid", error=problem, config=str(path))
        daemon.reload_failed = f"{len(exc.problems)} problem(s) in {path}"
        return
    except Exception as exc:  # whatever loading raised, the old settings stay
        log.error("reload rejected", error=f"{type(exc).__name__}: {exc}", config=str(path))
        daemon.reload_failed = f"{type(exc).__name__} while loading {path}"
        return
    names = changed(daemon.settings, new)
    restart = restart_only(names)
    await _apply(daemon, new, registry)
    daemon.reload_failed = None
    log.info(
        "config reloaded", changed=[n for n in names if n not in restart],
        needs_restart=restart, config=str(path),
    )  # fmt: skip


async def _apply(daemon: Daemon, new: Settings, registry: TaskRegistry) -> None:
    """The new settings where they can change while running; the rest wait for a restart."""
    old = daemon.settings
    daemon.settings = replace(
        new, **{name: getattr(old, name) for name in NEEDS_RESTART}, source=old.source
    )
    daemon.execution.registry = registry
    set_level(new.log_level)
    reopen_log_file()  # logrotate's postrotate runs `systemctl reload runner`
    lease_ms = int(new.lease_ttl * 1000)
    daemon.pump.batch, daemon.pump.lease_ms, daemon.pump.spin = (
        new.claim_batch, lease_ms, new.timer_spin,
    )  # fmt: skip
    daemon.leases.lease_ms = lease_ms
    daemon.recorder.batch_events = new.recorder_batch
    daemon.recorder.flush_interval = new.recorder_interval
    daemon.cron.update(new.cron, new.tasks)
    daemon.promoter.parking.horizon_s = new.park_horizon
    daemon.history.keep = new.keep_history  # from the keeper's next pass
    daemon.pool_watch.after_s = new.pools_full_warning
    await _resize_pools(daemon, old, new)
    daemon.pump.nudge()


async def _resize_pools(daemon: Daemon, old: Settings, new: Settings) -> None:
    """New sizes take effect for new jobs; running jobs finish on their old pool."""
    async_executor = daemon.executors["async"]
    assert isinstance(async_executor, AsyncExecutor)
    async_executor.limit = new.async_concurrency
    if new.io_threads != old.io_threads:
        retired_io = daemon.executors["io"]
        assert isinstance(retired_io, ThreadExecutor)
        daemon.executors["io"] = ThreadExecutor(new.io_threads, daemon.nudge)
        retired_io.retire()
    if new.cpu_processes != old.cpu_processes:
        pool = CpuPool(new.cpu_processes, daemon.nudge)
        await pool.start()
        retired_cpu = daemon.cpu_pool()
        daemon.executors["cpu"] = pool
        await retired_cpu.retire()
