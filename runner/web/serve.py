"""`runner web`: serve the API and the dashboard until SIGTERM or Ctrl-C.

It refuses to start listening beyond loopback without a token: every read would
then be open to the network. Signal handlers only set the stop event; the server
then stops accepting, finishes the requests in flight, and closes its Client.
"""

from __future__ import annotations

import asyncio
import signal

import uvloop
from aiohttp import web

from runner.config import Settings
from runner.config_values import split_listen
from runner.errors import ConfigError
from runner.logs import configure_logging, flush_logs, get_logger
from runner.systemd import notify
from runner.web.app import make_app
from runner.web.auth import is_loopback

log = get_logger()
SHUTDOWN_TIMEOUT = 10.0  # seconds for the requests in flight once a stop is asked


def check_exposure(settings: Settings) -> None:
    """ConfigError if the server would listen beyond loopback with no token."""
    host, _ = split_listen(settings.web_listen)
    if not is_loopback(host) and settings.web_token is None:
        raise ConfigError(
            [
                f"web.listen: {settings.web_listen} is reachable from the network, and "
                "there is no token to protect it: set [web] token (at least 16 characters) "
                "or RUNNER_WEB_TOKEN, or listen on 127.0.0.1"
            ],
            settings.source,
        )


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run_web(settings: Settings) -> int:
    """Serve until a stop signal; 0 once stopped cleanly."""
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    check_exposure(settings)
    try:
        uvloop.run(_serve(settings))
    finally:
        flush_logs()
    return 0


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = split_listen(settings.web_listen)
    runner = web.AppRunner(make_app(settings), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port  # port 0: the one chosen
        url = url_of(host, bound)
        log.info(
            "web ready",
            url=url,
            token_configured=settings.web_token is not None,
            reads_need_token=not is_loopback(host),
        )
        notify("READY=1", f"STATUS=serving {url}")
        await stop.wait()
        log.info("web stopping")
        notify("STOPPING=1")
    finally:
        await runner.cleanup()
    log.info("web stopped")
