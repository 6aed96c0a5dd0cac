"""`runner run`: set up logging, servers and connections, then serve until a signal.

Signal handlers only set the stop event; the daemon does the work in its
documented order. A second SIGTERM or SIGINT stops at once. Embedded servers
stop however the daemon ends, short of SIGKILL (whose leftovers the next start
stops): after the loop, on an error, on a signal during start, and at once on
that second signal.
"""

from __future__ import annotations

import asyncio
import multiprocessing.util
import os
import shutil
import signal
import sys
import threading
from typing import NoReturn

import uvloop

from runner.config.settings import Settings
from runner.daemon.startup import connect_when_ready
from runner.daemon.supervisor import Daemon
from runner.logs import configure_logging, flush_logs, get_logger
from runner.redact import redact_url
from runner.servers.connect import resolve_urls
from runner.servers.embedded import EmbeddedServers
from runner.tasks import TaskRegistry

log = get_logger()


def run_daemon(settings: Settings, drain: bool = False) -> int:
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    registry = TaskRegistry.from_settings(settings)
    # Until the loop takes over the signals, SIGTERM interrupts like Ctrl-C, through the
    # code that stops the embedded servers, instead of ending the process on the spot.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    redis_url, database_url, servers = resolve_urls(settings, start_embedded=True)
    try:
        if servers is not None:
            log.info(
                "embedded servers started",
                redis_url=redact_url(redis_url),
                database_url=redact_url(database_url),
                folder=str(servers.root),
            )
        uvloop.run(
            _serve(settings, registry, redis_url, database_url, drain=drain, servers=servers)
        )
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
        _leave_now(0)


def _leave_now(code: int) -> NoReturn:
    """os._exit, past the interpreter's exit hooks, after the one of them that leaves
    something behind: multiprocessing's removal of the folder (pymp-* in the temporary
    directory) it made for the cpu pool's forkserver socket."""
    shutil.rmtree(multiprocessing.util.get_temp_dir(), ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(
    settings: Settings,
    registry: TaskRegistry,
    redis_url: str,
    database_url: str,
    *,
    drain: bool,
    servers: EmbeddedServers | None,
) -> None:
    stop, reload = asyncio.Event(), asyncio.Event()
    _install_signal_handlers(stop, reload, servers)
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


def _install_signal_handlers(
    stop: asyncio.Event, reload: asyncio.Event, servers: EmbeddedServers | None
) -> None:
    """SIGTERM/SIGINT: stop (twice: at once). SIGHUP: reload. Handlers only set events,
    but for the second stop signal, which exits on the spot: it tells the embedded servers
    to stop first (without waiting), or they would run on with no daemon."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second stop signal: exiting at once", signal=signal.Signals(signum).name)
            if servers is not None:
                servers.signal_stop()
                log.info("embedded servers told to stop")
            flush_logs()
            _leave_now(1)
        log.info("stop signal received", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
