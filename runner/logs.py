"""Logging: one JSON object per line (journald, files), readable colours on a terminal.

Logging sits on the hot path (a line per job start and outcome), so the chain
is short: level filter, a cheap millisecond timestamp, orjson. Lines go to a
buffered stream that the daemon flushes every 100 ms, instead of one write
system call per line.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import structlog

from runner.redact import redact_text

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_stream: IO[bytes] | None = None


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
    """structlog logger writing pre-rendered lines to a buffered binary stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._write = stream.write

    def msg(self, line: bytes) -> None:
        self._write(line)

    debug = info = warning = warn = error = critical = exception = msg


class _LineWriterFactory:
    def __init__(self, stream: IO[bytes]) -> None:
        self._logger = _LineWriter(stream)

    def __call__(self, *args: Any) -> _LineWriter:
        return self._logger


def configure_logging(level: str = "info", fmt: str = "auto", file: str | None = None) -> None:
    """Set up structlog; `fmt` "auto" means console colours on a tty, JSON otherwise."""
    global _stream  # noqa: PLW0603  # one process-wide log stream, replaced on reconfigure
    flush_logs()
    stream: IO[bytes] = open(file, "ab") if file else sys.stdout.buffer  # noqa: SIM115  # kept open for the process's life
    _stream = stream
    console = fmt == "console" or (fmt == "auto" and not file and sys.stdout.isatty())
    shared: list[Any] = [structlog.contextvars.merge_contextvars, _add_level, _Timestamper()]
    if console:
        renderer: Any = structlog.dev.ConsoleRenderer(colors=True)
        processors = [*shared, _redact_error, renderer]
        factory: Any = structlog.PrintLoggerFactory(sys.stdout if not file else open(file, "a"))  # noqa: SIM115  # as above
    else:
        processors = [*shared, _redact_error, _json_bytes]
        factory = _LineWriterFactory(stream)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def flush_logs() -> None:
    if _stream is not None:
        with contextlib.suppress(ValueError, OSError):  # closed at exit, or a broken pipe
            _stream.flush()


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
