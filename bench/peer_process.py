"""A peer's own worker command under the peer venv, as a process group of its own.

Dramatiq and Huey fork worker processes; the group lets one signal reach them all,
and a group that ignores SIGTERM is killed, so no worker outlives its phase.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.queue_peers import booted_at
from bench.runner_daemon import REPO

STOP_S = 30.0


def start(python: Path, command: Sequence[str], env: Mapping[str, str], output: Path
          ) -> subprocess.Popen[bytes]:  # fmt: skip
    """`python -m *command`, its output to `output`, in a new session (its own group)."""
    with output.open("wb") as out:
        return subprocess.Popen(
            [str(python), "-m", *command], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, cwd=REPO, env=dict(env), start_new_session=True,
        )  # fmt: skip


def wait_booted(proc: subprocess.Popen[bytes], marks: Path, count: int, timeout: float) -> None:
    """Until `count` worker processes (or threads) have written their "booted" mark."""
    deadline = time.monotonic() + timeout
    while len(booted_at(marks)) < count:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited early ({proc.returncode}); see its output")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(booted_at(marks))} of {count} workers booted in {timeout}s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the group (the documented stop of both), then SIGKILL to whatever of
    it is left: a worker process that lingers after its parent is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            continue
