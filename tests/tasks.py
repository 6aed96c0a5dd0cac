"""Tasks the tests declare in their configs (imported by in-process and spawned daemons)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from runner import fan_out, group, step
from tests.ledger import append_line


async def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


async def noop() -> None:
    return None


async def sleep_async(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def sleep_io(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def burn_cpu(seconds: float) -> float:
    """Busy for `seconds` of wall time, holding the GIL as real cpu work does."""
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += 1
    return seconds


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


async def bad_result() -> object:
    return object()


def bad_result_cpu() -> object:
    return {1, 2, 3}


async def block_loop(seconds: float) -> float:
    """Blocks the daemon's event loop (a badly written task), to trip the watchdog."""
    time.sleep(seconds)  # noqa: ASYNC251  # blocking the loop is the point
    return seconds


async def exit_async(code: int) -> None:
    sys.exit(code)


def exit_io(code: int) -> None:
    sys.exit(code)


async def interrupt_async() -> None:
    raise KeyboardInterrupt


def interrupt_io() -> None:
    raise KeyboardInterrupt


async def cancel_itself() -> None:
    """Raises CancelledError of its own accord: nobody asked it to stop."""
    raise asyncio.CancelledError


async def generator_exit() -> None:
    raise GeneratorExit


async def two_args_async(a: int, b: int) -> int:
    return a + b


def two_args_io(a: int, b: int) -> int:
    return a + b


def two_args_cpu(a: int, b: int) -> int:
    return a + b


def inner_type_error(a: int) -> int:
    """A TypeError from inside the function, not from the call: worth retrying."""
    return a + "x"  # type: ignore[operator]  # the point of the task


def cpu_pid() -> int:
    """The worker process's id: which worker ran the job."""
    return os.getpid()


def crash_cpu() -> None:
    """A cpu worker that dies mid-job, as one does on a segfault or the OOM killer."""
    os.kill(os.getpid(), signal.SIGKILL)


RUN_LEDGER_ENV = "RUNNER_TEST_LEDGER"


def _ledger(line: str) -> None:
    append_line(RUN_LEDGER_ENV, line)


async def noted_sleep(job_id: str, ms: float) -> str:
    """Sleeps `ms` and notes the run in the ledger: "<job id> <run> <start ms> <end ms>",
    once the body ended; returns the run's own token, so a recorded result names the run
    that produced it."""
    run, start = os.urandom(4).hex(), time.time() * 1000
    await asyncio.sleep(ms / 1000)
    _ledger(f"{job_id} {run} {start:.3f} {time.time() * 1000:.3f}")
    return run


async def keyed_sleep(key: str, job_id: str, ms: float) -> str:
    """noted_sleep of a job that names its concurrency key first: the ledger's job id is
    "<key>/<job id>"."""
    return await noted_sleep(f"{key}/{job_id}", ms)


def noted_sleep_io(job_id: str, ms: float) -> str:
    """noted_sleep in a thread."""
    run, start = os.urandom(4).hex(), time.time() * 1000
    time.sleep(ms / 1000)
    _ledger(f"{job_id} {run} {start:.3f} {time.time() * 1000:.3f}")
    return run


async def discover(job_id: str, children: int, ms: float) -> dict[str, Any]:
    """A job that finds its work as it runs: `children` jobs of task "child" (each a
    noted_sleep of `ms`), then one "join" with their results; noted as it ends."""
    await noted_sleep(job_id, 0)
    kids = group(step("child", f"{job_id}.c{n}", ms) for n in range(children))
    return fan_out(kids, then=step("join", f"{job_id}.join"))


def discover_cpu(job_id: str, children: int) -> dict[str, Any]:
    """discover in a cpu worker, whose children sleep 0 ms."""
    _ledger(f"{job_id} cpu {time.time() * 1000:.3f} {time.time() * 1000:.3f}")
    kids = group(step("child", f"{job_id}.c{n}", 0) for n in range(children))
    return fan_out(kids, then=step("join", f"{job_id}.join"))


async def noted_join(results: Any, job_id: str) -> int:
    """A join: noted in the ledger; returns how many results it got (or the one it got,
    if a number), so what follows it can tell what it received."""
    count = results if isinstance(results, int) else len(results)
    await noted_sleep(job_id, 0)
    return count


async def marked_sleep(job_id: str, ms: float) -> str:
    """Sleeps `ms`, noting its start and its end in the ledger as they happen:
    "start <job id> <ms>" and "end <job id> <ms>" (a cancelled body notes no end)."""
    _ledger(f"start {job_id} {time.time() * 1000:.3f}")
    await asyncio.sleep(ms / 1000)
    _ledger(f"end {job_id} {time.time() * 1000:.3f}")
    return job_id
