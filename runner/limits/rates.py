"""Rate limits: `[tasks.X] rate = "50/s"` (or /m, /h) lets the task's jobs start at
most that often across every daemon (of one queue), `rate_burst = N` lets N start
at once after a quiet spell (default 1: evenly spaced), and `rate_key` (a path as
concurrency_key's) makes it a rate per value of that argument.

The claim script enforces it with a generic cell rate algorithm (lua/lib.lua): a
job held back is not claimed, failed or charged an attempt; it waits, still due,
and daemons are told when the rate next allows a start, so none asks in vain.
The rate is kept in the job's hash as "<interval us>/<tolerance us>", worked out
at enqueue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runner.limits.caps import key_value

PERIODS_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
FASTEST_PER_S = 1_000_000  # an interval is whole microseconds
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")


def interval_us(text: str) -> int:
    """The microseconds between two starts of a rate "N/s", "N/m" or "N/h"
    (ValueError saying what is accepted)."""
    found = _RATE.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"must look like '50/s', '100/m' or '1000/h', got {text!r}")
    count, period = int(found.group(1)), PERIODS_US[found.group(2)]
    if count < 1:
        raise ValueError(f"must allow at least 1 start, got {text!r}")
    if period / count < 1:
        raise ValueError(f"must be at most {FASTEST_PER_S:,}/s, got {text!r}")
    return round(period / count)


def rate_fields(
    task: str, interval: int | None, burst: int, path: str | None, job: Mapping[str, Any]
) -> dict[str, str]:
    """The job hash fields of its rate ({} for a task without one)."""
    if interval is None:
        return {}
    value = "" if path is None else "=" + key_value(path, job["args"], job["kwargs"], "rate_key")
    return {"rate": f"{interval}/{(burst - 1) * interval}", "rate_group": f"{task}{value}"}
