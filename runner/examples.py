"""Example tasks used by config/dev.toml: one of each kind, a failing one, and a job
that hands out its work as it runs (a fan-out and its join)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from runner.workflows.canvas import step
from runner.workflows.fan_out import fan_out


async def hello(name: str = "world") -> str:
    """async: runs on the event loop."""
    await asyncio.sleep(0.01)
    return f"hello, {name}"


async def noop() -> None:
    """async: does nothing (throughput benchmarks)."""


def slow_io(seconds: float = 1.0) -> dict[str, Any]:
    """io: blocks a thread, as a file copy or an HTTP call with a sync client would."""
    time.sleep(seconds)
    return {"slept": seconds}


def checksum(rounds: int = 200_000) -> str:
    """cpu: holds the GIL for a while; runs in a worker process."""
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def always_fails(message: str = "boom") -> None:
    """io: raises every time, to show retries with backoff ending in `failed`."""
    raise RuntimeError(message)


async def split(parts: int = 3) -> dict[str, Any]:
    """async: finds its work as it runs: one `hello` job a part, then one `tally` of
    their results, handed out by returning them (runner.fan_out)."""
    return fan_out([step("hello", f"part {n}") for n in range(parts)], then=step("tally"))


async def tally(results: list[str]) -> str:
    """async: a join: gets the results of the jobs it waited for, in their order."""
    return f"{len(results)} parts: " + "; ".join(results)
