"""Example tasks used by config/dev.toml: one of each kind, plus a failing one."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any


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
