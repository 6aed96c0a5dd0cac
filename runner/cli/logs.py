"""`runner logs`: read, filter and follow the daemon's JSON log lines.

Reads a file (following it across logrotate-style renames and truncation with
-f) or standard input (e.g. `journalctl -u runner -o cat -f | runner logs -`).
Prints one readable line per event, coloured on a terminal, or the JSON lines
themselves with --json.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_COLOURS = {"debug": "\033[2m", "info": "\033[32m", "warning": "\033[33m", "error": "\033[31m"}
_RESET, _DIM, _BOLD = "\033[0m", "\033[2m", "\033[1m"
_SHOWN_FIRST = ("ts", "level", "event", "job_id", "task", "attempt", "state")


@dataclass(frozen=True)
class LogFilter:
    job_id: str | None = None
    task: str | None = None
    level: str | None = None
    since: datetime | None = None

    def accepts(self, line: dict[str, Any]) -> bool:
        if self.job_id and line.get("job_id") != self.job_id:
            return False
        if self.task and line.get("task") != self.task:
            return False
        if self.level and _LEVELS.get(line.get("level", ""), 0) < _LEVELS[self.level]:
            return False
        if self.since:
            try:
                moment = datetime.fromisoformat(line.get("ts", ""))
            except ValueError:
                return False
            if moment < self.since:
                return False
        return True


def since_from(text: str, now: datetime | None = None) -> datetime:
    """'10m', '2h', '1d' ago, or an ISO 8601 time."""
    from runner.config.durations import parse_duration  # noqa: PLC0415

    try:
        return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(text))
    except ValueError:
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def render(line: dict[str, Any], colour: bool, times: TimeText = UTC_TEXT) -> str:
    ts = times(str(line.get("ts", "")))
    level = str(line.get("level", ""))
    head = [ts, f"{level:<7}", str(line.get("event", ""))]
    for key in ("job_id", "task", "attempt", "state"):
        if key in line:
            head.append(f"{key}={line[key]}")
    rest = " ".join(
        f"{k}={v if isinstance(v, str) else orjson.dumps(v).decode()}"
        for k, v in line.items()
        if k not in _SHOWN_FIRST
    )
    if not colour:
        return " ".join(head + ([rest] if rest else []))
    tint = _COLOURS.get(level, "")
    coloured = [f"{_DIM}{head[0]}{_RESET}", f"{tint}{head[1]}{_RESET}", f"{_BOLD}{head[2]}{_RESET}"]
    return " ".join(coloured + head[3:] + ([f"{_DIM}{rest}{_RESET}"] if rest else []))


def follow(path: Path, poll: float = 0.2) -> Iterator[str]:
    """Lines of `path` as they are written; reopens it when it is renamed (rotated) and a
    new file appears, or when it is truncated."""
    handle = _open_waiting(path, poll)
    inode = os.fstat(handle.fileno()).st_ino
    partial = ""
    while True:
        chunk = handle.readline()
        if chunk:
            partial += chunk
            if partial.endswith("\n"):
                yield partial
                partial = ""
            continue
        if _rotated(path, inode) or _truncated(path, handle):
            handle.close()
            handle = _open_waiting(path, poll)
            inode = os.fstat(handle.fileno()).st_ino
            continue
        time.sleep(poll)


def _open_waiting(path: Path, poll: float) -> IO[str]:
    while True:
        try:
            return path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            time.sleep(poll)


def _rotated(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return False  # renamed away; keep reading the old file until the new one appears


def _truncated(path: Path, handle: IO[str]) -> bool:
    try:
        return path.stat().st_size < handle.tell()
    except FileNotFoundError:
        return False


def show_logs(
    source: str,
    follow_file: bool,
    flt: LogFilter,
    as_json: bool,
    *,
    out: IO[str] = sys.stdout,
    times: TimeText = UTC_TEXT,
) -> None:
    """Every line that `flt` accepts, readably (times as `times` shows them) or as the
    JSON line itself; a closed `out` raises BrokenPipeError (the command line ends
    quietly on it)."""
    colour = out.isatty() and not as_json
    if source == "-":
        lines: Iterator[str] = sys.stdin
    elif follow_file:
        lines = follow(Path(source))
    else:
        lines = Path(source).open(encoding="utf-8", errors="replace")  # noqa: SIM115  # read to the end
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        try:
            line = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # not one of ours (a traceback, another program's output)
        if not isinstance(line, dict) or not flt.accepts(line):
            continue
        out.write((text if as_json else render(line, colour, times)) + "\n")
        out.flush()
