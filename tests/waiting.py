"""Waiting on a condition instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    condition: Callable[[], Awaitable[T | None]], timeout: float = ..., every: float = ...,
    what: str = ...,
) -> T: ...  # fmt: skip
@overload
async def eventually(
    condition: Callable[[], T | None], timeout: float = ..., every: float = ..., what: str = ...
) -> T: ...
async def eventually(
    condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.01,
    what: str = "the condition",
) -> Any:  # fmt: skip
    """The first truthy value of `condition` (sync or async), checked every `every`
    seconds; AssertionError naming `what` if it never holds within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout:g}s")
        await asyncio.sleep(every)
