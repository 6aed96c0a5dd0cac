"""Logging: one JSON object per line (journald, files), readable colours on a terminal.

Logging sits on the hot path (a line per job start and outcome), so the chain
is short: level filter, a cheap millisecond timestamp, orjson. Loggers are
cached on first use; the level and the output stream are module state that
`configure_logging` may change later (a reload) without rebuilding them.
Lines go to a buffered stream that the daemon flushes every 100 ms, instead of
one write system call per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog

from runner.redact import redact_text

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}
_stream: IO[bytes] | None = None
_min_level = _LEVELS["info"]
_json = True  # JSON lines (else a terminal's colours: job_line takes the general path)


class _Timestamper:
    """RFC 3339 UTC with milliseconds; the second's prefix is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        event["ts"] = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        return event


_TIMESTAMP = _Timestamper()


def job_line(event: str, **fields: Any) -> None:
    """An info line of a job's run ("job started", "job succeeded"): the same JSON
    object the general logger writes, without its chain (a bound logger, a copy of
    the fields, a call per processor), which cost more than half of the two lines a
    job writes at full speed (bench/log_cost.py). Fields are the caller's own values
    (ids, names, numbers): no error text to redact."""
    if _min_level > _LEVELS["info"]:
        return
    if not _json:
        get_logger().info(event, **fields)
        return
    fields["event"] = event
    fields["level"] = "info"
    _TIMESTAMP(None, "", fields)
    if _stream is not None:
        _stream.write(orjson.dumps(fields, default=str) + b"\n")


def _filter_level(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, 20) < _min_level:
        raise structlog.DropEvent
    return event


def _add_level(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["level"] = "warning" if method == "warn" else method
    return event


def _redact_error(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    error = event.get("error")
    if isinstance(error, str) and "://" in error:
        event["error"] = redact_text(error)
    return event


def _json_bytes(_: Any, __: str, event: MutableMapping[str, Any]) -> bytes:
    return orjson.dumps(event, default=str) + b"\n"


class _LineWriter:
    """structlog logger writing pre-rendered lines to the current log stream."""

    def msg(self, line: bytes) -> None:
        if _stream is not None:
            _stream.write(line)

    debug = info = warning = warn = error = critical = exception = msg


_LINE_WRITER = _LineWriter()


def configure_logging(level: str = "info", fmt: str = "auto", file: str | None = None) -> None:
    """Set up structlog; `fmt` "auto" means console colours on a tty, JSON otherwise."""
    global _stream, _min_level, _json  # noqa: PLW0603  # process-wide, changed on reconfigure
    flush_logs()
    stream: IO[bytes] = open(file, "ab") if file else sys.stdout.buffer  # noqa: SIM115  # kept open for the process's life
    if _stream is not None and _stream is not sys.stdout.buffer:
        _stream.close()  # a file opened by an earlier configuration
    _stream = stream
    _min_level = _LEVELS[level]
    console = fmt == "console" or (fmt == "auto" and not file and sys.stdout.isatty())
    _json = not console
    shared: list[Any] = [
        _filter_level,
        _add_level,
        _TIMESTAMP,
    ]
    if console:
        renderer: Any = structlog.dev.ConsoleRenderer(colors=True)
        processors = [*shared, _redact_error, renderer]
        factory: Any = structlog.PrintLoggerFactory(sys.stdout if not file else open(file, "a"))  # noqa: SIM115  # as above
    else:
        processors = [*shared, _redact_error, _json_bytes]
        factory = lambda *_: _LINE_WRITER  # noqa: E731  # structlog wants a factory callable
    _capture_standard_logging()
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(0),  # the level is _filter_level's job
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


class _ForwardToStructlog(logging.Handler):
    """Libraries log through the standard library (asyncpg's pool, for one, when it
    cannot reconnect); their records become JSON lines like ours, one per record,
    with the traceback as a field, never raw lines between the JSON."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {exc}"
        method = record.levelname.lower()
        if method not in _LEVELS:
            method = "info"
        getattr(get_logger(), method)(record.getMessage(), **fields)


def _capture_standard_logging() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ForwardToStructlog)]:
        root.removeHandler(handler)
    root.addHandler(_ForwardToStructlog())
    root.setLevel(logging.WARNING)


def reopen_log_file() -> None:
    """Reopen the log file (after logrotate renamed it); stdout is left alone."""
    global _stream  # process-wide, as configure_logging sets it
    if _stream is None or _stream is sys.stdout.buffer or not hasattr(_stream, "name"):
        return
    flush_logs()
    old, _stream = _stream, open(_stream.name, "ab")  # noqa: SIM115  # kept open for the process's life
    old.close()


def set_level(level: str) -> None:
    """Change the level of every logger at once (a reload)."""
    global _min_level  # noqa: PLW0603  # process-wide, as configure_logging sets it
    _min_level = _LEVELS[level]


def flush_logs() -> None:
    if _stream is not None:
        with contextlib.suppress(ValueError, OSError):  # closed at exit, or a broken pipe
            _stream.flush()


async def flush_logs_periodically() -> None:
    """Buffered lines reach the file or journal within 100 ms (a daemon service)."""
    while True:
        await asyncio.sleep(0.1)
        flush_logs()


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
