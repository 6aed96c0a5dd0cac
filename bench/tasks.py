"""The tasks the benchmark runs on runner.

Imported by the runner daemon (as `bench.tasks:noop` and `bench.tasks:lateness`
in the benchmark's config, and the cancel benchmark's tasks in its own). The
lateness task runs the body the peers run too (bench/late.py).
"""

from __future__ import annotations

import asyncio
import os
import time

from bench import late


async def noop() -> None:
    """The throughput task: no work, so the figure is the engine's own cost per job."""


async def noop_for(tenant: str) -> None:
    """noop with one argument, for a limit keyed on it (bench/limits.py)."""


async def lateness(due: float, path: str) -> None:
    """The lateness task: the body every system runs (bench/late.py) records its start
    against the exact due time the enqueuer asked for."""
    late.record_start(due, path)


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
