"""A real `python -m runner run` process for tests: config on disk, JSON log lines parsed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.store.postgres.store import PgStore

LogLine = dict[str, Any]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """A TOML file from {"section": {"key": value}}; dotted section names nest tables."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def daemon_config_file(
    path: Path, redis_url: str, database_url: str, prefix: str, **sections: Mapping[str, Any]
) -> Path:
    """A daemon config for the test's own servers, prefix and the tasks in tests.tasks."""
    base: dict[str, dict[str, Any]] = {
        "redis": {"url": redis_url, "key_prefix": prefix},
        "postgres": {"url": database_url},
        "daemon": {"lease_ttl": "2s", "shutdown_grace": "5s"},
        "recorder": {"flush_interval": "50ms", "reclaim_after": "1s"},
        "log": {"level": "info", "format": "json"},
        "tasks.echo": {"target": "tests.tasks:echo", "kind": "async"},
        "tasks.sleep_io": {"target": "tests.tasks:sleep_io", "kind": "io", "retries": 2},
        "tasks.bad_result": {"target": "tests.tasks:bad_result", "kind": "async"},
    }
    for name, values in sections.items():
        base[name.replace("__", ".")] = {**base.get(name.replace("__", "."), {}), **values}
    return write_config(path, base)


class DaemonProcess:
    """Runs the daemon with stdout captured line by line in a background thread."""

    def __init__(
        self,
        config: Path,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        cwd: Path | None = None,
    ) -> None:
        """`args`: more of `runner run`'s options (e.g. --drain); `cwd`: where it runs,
        whose `runner` package it imports (default: this checkout)."""
        full_env = {**os.environ, **(env or {})}
        for name in ("RUNNER_REDIS_URL", "RUNNER_DATABASE_URL", "RUNNER_KEY_PREFIX"):
            if env is None or name not in env:
                full_env.pop(name, None)  # the config file names the test's servers
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "run", *args, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd or Path(__file__).resolve().parents[2],
        )
        self.lines: list[LogLine] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            with contextlib.suppress(ValueError):  # a traceback, or a child's line
                self.lines.append(json.loads(text))

    def wait_for(self, predicate: Callable[[LogLine], bool], timeout: float = 20.0) -> LogLine:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                self._reader.join(1)
                if not any(predicate(line) for line in self.lines):
                    raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.02)
        raise AssertionError(f"no matching log line within {timeout}s:\n{self.output()}")

    def wait_ready(self, timeout: float = 30.0) -> LogLine:
        return self.wait_for(lambda line: line.get("event") == "daemon ready", timeout)

    def events(self, name: str) -> list[LogLine]:
        return [line for line in self.lines if line.get("event") == name]

    def output(self) -> str:
        return "\n".join(self.raw[-60:])

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(2)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(2)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def cli(*args: str, config: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `python -m runner ARGS --config CONFIG` as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )


async def wait_for_history(
    pg: PgStore, job_id: str, final: str, timeout: float = 20.0
) -> tuple[list[dict[str, Any]], float]:
    """Poll Postgres until the job's history ends in `final`; (history, when seen)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = await pg.job_history(job_id)
        if history and history[-1]["to_state"] == final:
            return history, time.time()
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not reach {final}: {await pg.job_history(job_id)}")
