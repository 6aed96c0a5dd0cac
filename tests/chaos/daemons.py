"""Daemon processes for chaos runs: restartable, each run logging to its own file.

A slot (`ChaosDaemon`) is one daemon of the fleet; every start is a new
`python -m runner run` process (a `Run`) in its own session, writing stdout and
stderr to a file, so a long run never blocks on a pipe nobody reads and a
killed daemon's last lines stay on disk. Each run remembers whether the
scenario killed or stopped it, so any other exit is a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[2]
LogLine = dict[str, Any]

# Log lines that mean runner itself failed, whatever happened around it.
BUG_EVENTS = ("service stopped unexpectedly", "unexpected error", "job crashed in runner")


@dataclass
class Run:
    """One process of a daemon slot."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    killed: bool = False  # SIGKILLed by the scenario
    stopped: bool = False  # SIGTERMed by the scenario

    @property
    def pid(self) -> int:
        return self.proc.pid

    def lines(self) -> tuple[list[LogLine], list[str]]:
        """(JSON log lines, other output such as tracebacks)."""
        parsed: list[LogLine] = []
        other: list[str] = []
        with contextlib.suppress(FileNotFoundError), self.log.open("rb") as file:
            for raw in file:
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    other.append(raw.decode(errors="replace").rstrip("\n"))
                    continue
                if isinstance(line, dict):
                    parsed.append(line)
                else:
                    other.append(raw.decode(errors="replace").rstrip("\n"))
        return parsed, other

    def leftovers(self) -> list[int]:
        """Processes still alive in this run's process group (its forkserver and cpu
        workers, once the daemon itself is gone)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.pid and fields[0] != "Z":
                    found.append(int(entry.name))
        return found

    def tail(self, count: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-count:])
        return ""


class ChaosDaemon:
    def __init__(self, name: str, config: Path, folder: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.config = config
        self.folder = folder
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")},
            **env,
        }
        self.runs: list[Run] = []

    @property
    def current(self) -> Run:
        return self.runs[-1]

    def start(self) -> Run:
        log = self.folder / f"{self.name}.run{len(self.runs) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runner", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                start_new_session=True,  # its cpu workers share its process group
            )
        run = Run(proc, log)
        self.runs.append(run)
        return run

    def alive(self) -> bool:
        return bool(self.runs) and self.current.proc.poll() is None

    async def wait_ready(self, timeout: float = 30.0) -> None:
        run = self.current
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines, _ = run.lines()
            if any(line.get("event") == "daemon ready" for line in lines):
                return
            if run.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {run.proc.returncode} before ready:\n{run.tail()}"
                )
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{run.tail()}")

    def kill(self) -> None:
        """SIGKILL the daemon process alone, as a crash or the OOM killer would; its cpu
        workers are left to notice by themselves."""
        run = self.current
        run.killed = True
        with contextlib.suppress(ProcessLookupError):
            run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(10)

    def suspend(self) -> None:
        """SIGSTOP: the daemon freezes, as in a long GC pause or a stalled VM, while the
        world goes on; its leases expire and other daemons take its jobs."""
        self.current.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.current.proc.send_signal(signal.SIGCONT)

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the exit code (None: still running after `timeout`).
        A run restarted after a kill that is still starting is let finish its start
        first: until the daemon takes over its signals, SIGTERM ends the interpreter
        on the spot (as systemd expects of any process), which is not what is tested."""
        run = self.current
        if run.proc.poll() is None:
            with contextlib.suppress(AssertionError):  # exited or stuck: judged below
                await self.wait_ready(timeout)
            run.stopped = True
            run.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(run.proc.wait, timeout)
        return run.proc.poll()

    def cleanup(self) -> None:
        """Kill every process any run left behind (the run's own process group only)."""
        for run in self.runs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.proc.wait(10)


class Fleet:
    """The daemons of one cluster, all on the same config."""

    def __init__(self, daemons: list[ChaosDaemon]) -> None:
        self.daemons = daemons
        self.kills = 0
        self.last_kill: float | None = None

    async def start(self) -> None:
        for daemon in self.daemons:
            daemon.start()
        await asyncio.gather(*(daemon.wait_ready() for daemon in self.daemons))

    def kill_and_restart(self, daemon: ChaosDaemon) -> None:
        """SIGKILL the daemon and start it again (it does not wait to be ready: the
        others carry on meanwhile, as on a real host)."""
        daemon.kill()
        self.kills += 1
        self.last_kill = time.monotonic()
        daemon.start()

    async def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        codes = await asyncio.gather(*(daemon.stop(timeout) for daemon in self.daemons))
        return {daemon.name: code for daemon, code in zip(self.daemons, codes, strict=True)}

    def cleanup(self) -> None:
        for daemon in self.daemons:
            daemon.cleanup()

    def runs(self) -> list[tuple[ChaosDaemon, Run]]:
        return [(daemon, run) for daemon in self.daemons for run in daemon.runs]
