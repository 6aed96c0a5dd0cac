"""`runner web`: serve the API and the dashboard until SIGTERM or Ctrl-C.

It refuses to start listening beyond loopback without a token: every read would
then be open to the network. Signal handlers only set the stop event; the server
then stops accepting, finishes the requests in flight, and closes its Client.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from dataclasses import dataclass, replace
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from runner.config.settings import Settings
from runner.config.values import split_listen
from runner.errors import ConfigError, RunnerError
from runner.logs import configure_logging, flush_logs, get_logger
from runner.systemd import notify
from runner.web.app import make_app
from runner.web.auth import check_listen, is_loopback

log = get_logger()
SHUTDOWN_TIMEOUT = 10.0  # seconds for the requests in flight once a stop is asked
_BIND_HINTS = {
    errno.EADDRINUSE: "address already in use: another process listens there (`ss -ltnp` "
    "shows which); stop it, or choose another port",
    errno.EACCES: "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; "
    "choose a port from 1024 up",
    errno.EADDRNOTAVAIL: "no network interface of this machine has that address; "
    "choose one it has, or 127.0.0.1",
}


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, except for a request its parser refused (no Host
    header, two of them, a malformed request line): aiohttp answers those 400 itself
    and would log an error with its exception; that is the client's mistake, so it
    is one line at info, as the refusals of the middleware are."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        if isinstance(exc_info, HttpProcessingError) and 400 <= exc_info.code < 500:
            remote = args[0] if args else None
            log.info("request refused", status=exc_info.code, error=exc_info.message,
                     remote=remote)  # fmt: skip
            return
        super().exception(msg, *args, exc_info=exc_info, **kw)


class CannotServe(RunnerError):
    """`runner web` cannot start for a reason outside the config file (exit 1)."""


@dataclass(frozen=True)
class Listen:
    """Where to listen and what chose it: --listen, or [web] listen in the config."""

    address: str
    flag: bool
    source: str

    @classmethod
    def of(cls, settings: Settings, flag: str | None) -> Listen:
        """--listen's value (checked) when given, else [web] listen."""
        if flag is None:
            return cls(settings.web_listen, False, settings.source)
        return cls(check_listen(flag, "--listen"), True, settings.source)

    @property
    def origin(self) -> str:
        return "--listen" if self.flag else f"[web] listen in {self.source}"


def check_exposure(settings: Settings, listen: Listen) -> None:
    """Refuse to listen beyond loopback with no token: every read would be open to the
    network. A ConfigError when the file chose the address, else naming --listen."""
    host, _ = split_listen(listen.address)
    if is_loopback(host) or settings.web_token is not None:
        return
    why = (
        "is reachable from the network, and there is no token to protect it: set [web] "
        "token (at least 16 characters) or RUNNER_WEB_TOKEN, or listen on 127.0.0.1"
    )
    if listen.flag:
        raise CannotServe(f"--listen {listen.address} {why}")
    raise ConfigError([f"web.listen: {listen.address} {why}"], settings.source)


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run_web(settings: Settings, listen_flag: str | None = None) -> int:
    """Serve until a stop signal; 0 once stopped cleanly. `listen_flag` is --listen's
    value, which takes the place of [web] listen."""
    listen = Listen.of(settings, listen_flag)
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    check_exposure(settings, listen)
    try:
        uvloop.run(_serve(replace(settings, web_listen=listen.address), listen))
    finally:
        flush_logs()
    return 0


async def _start_site(runner: web.AppRunner, listen: Listen) -> None:
    """Bind the listening socket; CannotServe naming the address and what chose it."""
    host, port = split_listen(listen.address)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        hint = _BIND_HINTS.get(exc.errno or 0, exc.strerror or str(exc))
        raise CannotServe(
            f"cannot listen on {listen.address} (from {listen.origin}): {hint}"
        ) from None


async def _serve(settings: Settings, listen: Listen) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = split_listen(settings.web_listen)
    runner = web.AppRunner(
        make_app(settings), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
        logger=_ServerLog(logging.getLogger("aiohttp.server")),
    )  # fmt: skip
    await runner.setup()
    try:
        await _start_site(runner, listen)
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
