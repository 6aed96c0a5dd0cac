"""The tasks the benchmark runs, and the one way both sides measure lateness.

Imported by the runner daemon (as `bench.tasks:noop` and `bench.tasks:lateness`
in the benchmark's config, and the cancel benchmark's tasks in its own) and by the
arq worker (for `lateness_ms`), so it must not import runner or arq: either venv
has to load it.
"""

from __future__ import annotations

import asyncio
import os
import time


def lateness_ms(due_ms: float) -> float:
    """How long after its due time a job started (negative: it started early).

    Both sides call this first thing in their task, so the figure covers the
    same span: from the due time to the task's body running.
    """
    return time.time() * 1000 - due_ms


async def noop() -> None:
    """The throughput task: no work, so the figure is the engine's own cost per job."""


async def lateness(due_ms: int) -> float:
    """The lateness task: returns (into the job's result) how late it started, in ms."""
    return round(lateness_ms(due_ms), 3)


# The cancel benchmark (bench.cancel): work that runs until it is cancelled.


async def sleep_async(seconds: float) -> float:
    """An async job that waits on the loop, as I/O-bound coroutines do."""
    await asyncio.sleep(seconds)
    return seconds


def sleep_io(seconds: float) -> float:
    """A blocking job in an io thread."""
    time.sleep(seconds)
    return seconds


def burn_cpu(seconds: float) -> int:
    """A cpu job that keeps its core busy for `seconds`; returns the worker's pid, so
    the benchmark can tell which worker process ran it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return os.getpid()
