"""Tasks the chaos daemons run: short work of each kind, flaky and failing work, and
tasks that misbehave in every way a task can.

Every well-behaved task takes the job's id as its first argument and notes each
execution in the ledger (the file named by RUNNER_CHAOS_LEDGER), so the audit can
tell a job that really ran twice from one whose history says it ran twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from tests.ledger import append_line

LEDGER_ENV = "RUNNER_CHAOS_LEDGER"
# The functions below that note every execution in the ledger (each calls _note first).
WRITES_LEDGER = frozenset(
    {"async_work", "io_work", "cpu_work", "flaky_io", "flaky_async", "always_fails"}
)


def _note(job_id: str) -> None:
    """One line per execution (see tests/ledger.py)."""
    append_line(LEDGER_ENV, job_id)


async def async_work(job_id: str, ms: float) -> str:
    _note(job_id)
    await asyncio.sleep(ms / 1000)
    return job_id


def io_work(job_id: str, ms: float) -> str:
    _note(job_id)
    time.sleep(ms / 1000)
    return job_id


def cpu_work(job_id: str, ms: float) -> str:
    """Busy for `ms` of wall time, holding the GIL as real cpu work does."""
    _note(job_id)
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        pass
    return job_id


def flaky_io(job_id: str, until_ms: int) -> str:
    """Fails while the clock is before `until_ms`, then succeeds: a retry fixes it."""
    _note(job_id)
    if time.time() * 1000 < until_ms:
        raise ConnectionError(f"flaky: not before {until_ms}")
    return job_id


async def flaky_async(job_id: str, until_ms: int) -> str:
    _note(job_id)
    if time.time() * 1000 < until_ms:
        raise ConnectionError(f"flaky: not before {until_ms}")
    return job_id


async def always_fails(job_id: str) -> None:
    _note(job_id)
    raise RuntimeError("always fails")


# Tasks that misbehave. Each name says what it does; the kind comes from the config,
# so one function serves as an async, io or cpu task where it can.


async def raise_exception_async() -> None:
    raise ValueError("a plain exception")


def raise_exception() -> None:
    raise ValueError("a plain exception")


async def system_exit_async() -> None:
    sys.exit(3)


def system_exit() -> None:
    sys.exit(3)


async def keyboard_interrupt_async() -> None:
    raise KeyboardInterrupt


def keyboard_interrupt() -> None:
    raise KeyboardInterrupt


async def generator_exit_async() -> None:
    raise GeneratorExit


def generator_exit() -> None:
    raise GeneratorExit


async def cancelled_error_async() -> None:
    """Raises CancelledError of its own accord: nobody asked it to stop."""
    raise asyncio.CancelledError


def cancelled_error() -> None:
    raise asyncio.CancelledError


def exit_process(code: int) -> None:
    """Ends its own process at once (in a cpu worker: the worker, never the daemon)."""
    os._exit(code)


def kill_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def two_args_async(a: int, b: int) -> int:
    return a + b


def two_args(a: int, b: int) -> int:
    return a + b
