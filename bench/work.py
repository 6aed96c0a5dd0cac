"""The job bodies of the io and cpu workloads, the same for every system measured.

Imported by runner's daemon and by the peers' workers (under the peer venv), so it
imports neither runner nor a peer. Each body appends one line "start end" (wall
seconds) to `path`, one small O_APPEND write, so that every system is timed the
same way: from the first body's start to the last body's end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def append_line(path: str, line: str) -> None:
    """One O_APPEND write: lines from many threads and processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _record(path: str, started: float) -> None:
    append_line(path, f"{started:.6f} {time.time():.6f}\n")


def blocking_io(seconds: float, path: str) -> None:
    """Blocking I/O, as a call to a slow service: the thread waits, the CPU is free."""
    started = time.time()
    time.sleep(seconds)
    _record(path, started)


def cpu_burn(seconds: float, path: str) -> None:
    """CPU work for `seconds` of this process's own CPU time (not wall time, which
    another process on the same core would stretch)."""
    started = time.time()
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    _record(path, started)


def enqueue_timed(
    argv: list[str], send: Callable[[str, list[Any], float | None], None]
) -> dict[str, Any]:
    """A peer's `enqueue --jobs N [--task noop|io|cpu --seconds S --path P] [--delay D]`:
    `send` (task, args, delay in seconds or None) once a job, timed; the JSON the
    harness reads back."""
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    jobs, task = int(options["--jobs"]), options.get("--task", "noop")
    args: list[Any] = [] if task == "noop" else [float(options["--seconds"]), options["--path"]]
    delay = float(options["--delay"]) if "--delay" in options else None
    started = time.perf_counter()
    for _ in range(jobs):
        send(task, args, delay)
    return {"jobs": jobs, "enqueue_seconds": round(time.perf_counter() - started, 3)}


def span(path: str) -> tuple[int, float]:
    """(bodies recorded, seconds from the first start to the last end)."""
    with open(path, encoding="utf-8") as file:
        rows = [tuple(map(float, line.split())) for line in file if line.strip()]
    if not rows:
        return 0, 0.0
    return len(rows), max(end for _, end in rows) - min(start for start, _ in rows)


def stretched(path: str, slots: int) -> float:
    """The bodies' own time through `slots` slots: the sum of each body's span (start
    to end, as long as the machine stretched it) over the slots. What a pool that lost
    no time between two bodies would take on this machine, in this run."""
    with open(path, encoding="utf-8") as file:
        rows = [tuple(map(float, line.split())) for line in file if line.strip()]
    return sum(end - start for start, end in rows) / slots
