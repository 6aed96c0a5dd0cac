"""The delayed-job lateness body and its records, the same for every system measured.

Each job is told the exact due time its enqueuer asked for (a float of wall
seconds, never rounded to a system's own resolution), and its body's first act
is to read the clock: lateness = start - that due time. A system that rounds a
due time down, or reads its clock a little early, shows up as early starts
instead of being excused by its own rounding.

Imported by runner's daemon and by the peers' apps (under the peer venv), so it
imports neither runner nor a peer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.plan import delays
from bench.work import append_line


def record_start(due: float, path: str) -> None:
    """The lateness body: one line "start due", both as exact reprs, appended to `path`."""
    started = time.time()
    append_line(path, f"{started!r} {due!r}\n")


def enqueue_delayed(argv: list[str], send: Callable[[float, list[Any]], None]) -> dict[str, Any]:
    """A peer's `late --jobs N --spread S --offset O --seed X --path P`.

    For each of the plan's delays, the due time is read off the clock right
    before `send(delay_s, [due, path])`, so a system's own clock reading inside
    the call comes after it: its due time is never earlier than the one asked for.
    """
    options = dict(zip(argv[::2], argv[1::2], strict=True))
    path = options["--path"]
    planned = delays(
        int(options["--jobs"]), float(options["--spread"]), float(options["--offset"]),
        int(options["--seed"]),
    )  # fmt: skip
    started = time.perf_counter()
    for delay in planned:
        send(delay, [time.time() + delay, path])
    return {"jobs": len(planned), "enqueue_seconds": round(time.perf_counter() - started, 3)}


def recorded(path: str) -> int:
    """How many bodies have recorded their start so far."""
    try:
        with open(path, encoding="utf-8") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0


def wait_recorded(path: str, count: int, timeout: float) -> None:
    """Until `count` bodies have recorded their start; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while (done := recorded(path)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {count} delayed jobs started within {timeout}s")
        time.sleep(0.1)


def samples_ms(path: str) -> list[float]:
    """Each body's start minus its exact due time, in ms (negative: it started early)."""
    with open(path, encoding="utf-8") as file:
        rows = [line.split() for line in file if line.strip()]
    return [(float(start) - float(due)) * 1000 for start, due in rows]
