"""`runner run`: set up logging, servers and connections, then serve until a signal.

Signal handlers only set the stop event; the daemon does the work in its
documented order. A second SIGTERM or SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import uvloop

from runner.config import Settings
from runner.connections import resolve_urls
from runner.daemon import Daemon
from runner.logs import configure_logging, flush_logs, get_logger
from runner.redact import redact_url
from runner.startup import connect_when_ready
from runner.tasks import TaskRegistry

log = get_logger()


def run_daemon(settings: Settings, drain: bool = False) -> int:
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    registry = TaskRegistry.from_settings(settings)
    redis_url, database_url, servers = resolve_urls(settings, start_embedded=True)
    if servers is not None:
        log.info(
            "embedded servers started",
            redis_url=redact_url(redis_url),
            database_url=redact_url(database_url),
            folder=str(servers.root),
        )
    try:
        uvloop.run(_serve(settings, registry, redis_url, database_url, drain))
    finally:
        if servers is not None:
            servers.stop()
            log.info("embedded servers stopped")
        flush_logs()
    _exit_if_threads_linger()
    return 0


def _exit_if_threads_linger() -> None:
    """An io job past the grace still holds its thread, and the interpreter would wait
    for it at exit (concurrent.futures joins its workers). Its job was handed back and
    everything is recorded, so leave now."""
    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def _serve(
    settings: Settings, registry: TaskRegistry, redis_url: str, database_url: str, drain: bool
) -> None:
    stop, reload = asyncio.Event(), asyncio.Event()
    _install_signal_handlers(stop, reload)
    conns = await connect_when_ready(settings, redis_url, database_url, stop)
    if conns is None:
        log.info("stopped while waiting for the servers")
        return
    try:
        daemon = Daemon(settings, registry, conns)
        daemon.reload_requested = reload
        await daemon.serve(stop, drain=drain)
    finally:
        await conns.close()


def _install_signal_handlers(stop: asyncio.Event, reload: asyncio.Event) -> None:
    """SIGTERM/SIGINT: stop (twice: at once). SIGHUP: reload. Handlers only set events."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second stop signal: exiting at once", signal=signal.Signals(signum).name)
            flush_logs()
            os._exit(1)
        log.info("stop signal received", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
