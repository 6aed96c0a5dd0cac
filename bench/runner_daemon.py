"""A `python -m runner run` process for the benchmark, and the log lines it leaves.

The daemon's own JSON log is the stopwatch: its "daemon ready" and "daemon
stopped" lines bound the measured span, so interpreter start-up, imports and
migrations are not counted, exactly as arq's worker is timed from its start-up
hook. Logging goes to a file at info, so the per-job lines are really written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
LogLine = dict[str, Any]

# The config file names the servers; these would silently override it.
_OVERRIDES = ("RUNNER_REDIS_URL", "RUNNER_DATABASE_URL", "RUNNER_KEY_PREFIX", "RUNNER_CONFIG")


def write_config(
    path: Path, redis_url: str, database_url: str, key_prefix: str, log_file: Path
) -> Path:
    """A daemon config with the benchmark's tasks; everything else keeps runner's defaults."""
    sections: dict[str, dict[str, str]] = {
        "redis": {"url": redis_url, "key_prefix": key_prefix},
        "postgres": {"url": database_url},
        "log": {"level": "info", "file": str(log_file), "format": "json"},
        "tasks.noop": {"target": "bench.tasks:noop", "kind": "async"},
        "tasks.lateness": {"target": "bench.tasks:lateness", "kind": "async"},
    }
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def log_time(line: LogLine) -> float:
    """A log line's `ts` (RFC 3339, UTC, ms) as seconds since the epoch."""
    return datetime.fromisoformat(line["ts"]).timestamp()


def read_log(path: Path) -> list[LogLine]:
    with path.open("rb") as file:
        return [orjson.loads(raw) for raw in file if raw.strip()]


def find_line(lines: Sequence[LogLine], event: str) -> LogLine:
    for line in lines:
        if line.get("event") == event:
            return line
    raise RuntimeError(f"the daemon never logged {event!r}")


class RunnerDaemon:
    """Starts the daemon on enter; kills it on exit if it is still running (a failed run).

    `wrapper` prefixes the command, e.g. a profiler: `py-spy record -o F --`.
    """

    def __init__(
        self, config: Path, log_file: Path, output: Path, drain: bool = False,
        wrapper: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.command = [
            *wrapper, sys.executable, "-m", "runner", "run", "--config", str(config),
            *(["--drain"] if drain else []),
        ]  # fmt: skip
        self.log_file = log_file
        self.output = output
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RunnerDaemon:
        env = {k: v for k, v in os.environ.items() if k not in _OVERRIDES}
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=REPO,  # cwd: `bench.tasks` must be importable
            )  # fmt: skip
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _running(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise RuntimeError("the daemon was not started")
        return self.proc

    def wait_for_line(self, event: str, timeout: float) -> LogLine:
        """Wait until the daemon logs `event` (it flushes its log every 100 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._running().poll() is not None:
                raise RuntimeError(f"the daemon exited early; see {self.output}")
            if self.log_file.exists():
                for line in read_log(self.log_file):
                    if line.get("event") == event:
                        return line
            time.sleep(0.05)
        raise TimeoutError(f"the daemon did not log {event!r} within {timeout}s")

    def wait(self, timeout: float) -> int:
        """The exit code; a daemon that does not exit in time is a failed run."""
        try:
            return self._running().wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the daemon did not exit within {timeout}s") from None

    def stop(self, timeout: float) -> int:
        """SIGTERM (the documented graceful stop), then wait for the exit code."""
        self._running().send_signal(signal.SIGTERM)
        return self.wait(timeout)
