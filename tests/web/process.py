"""`python -m runner web` as a process of its own, its output read line by line as it
comes, for the tests that need the real command: start-up checks, curl, the browser."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class WebProcess:
    """`runner web --config CONFIG ARGS`, with no RUNNER_* variable of the caller's
    environment but those in `env`; stdout and stderr in `lines`."""

    def __init__(self, config: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "web", "--config", str(config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**clean, **(env or {})},
            cwd=ROOT,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines so far."""
        found = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    found.append(event)
        return found

    def ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """The "web ready" line (its url is the server's), once it is logged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == "web ready":
                    return event
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("runner web did not start:\n" + self.output())

    def url(self) -> str:
        return str(self.ready()["url"])

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit on its own (a refused start); its exit code.
        One still running after `timeout` is stopped, and that is an AssertionError."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"runner web still ran after {timeout}s:\n{self.output()}"
            ) from None
        return self.stop()

    def stop(self) -> int:
        """SIGTERM, and its exit code once it stopped (killed if it will not)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def output(self) -> str:
        return "\n".join(self.lines)
