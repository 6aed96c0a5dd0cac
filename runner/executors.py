"""Where a job's code runs: on the loop (async), in threads (io), in processes (cpu).

Each executor reports how many more jobs it can start right now; the pump
claims no more than that (no prefetch). A slot is taken synchronously when a
job is claimed (`acquire`), before its task first runs, so the next claim
already sees it; `run` then owns the slot and frees it when the work really
ends, and `release` gives back a slot that will not be used. Each calls
`on_free` when a slot frees, so the pump can claim again at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from runner.errors import TaskTimeout
from runner.tasks import Task


class Executor(Protocol):
    kind: str

    def capacity(self) -> int: ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    async def run(self, task: Task, args: list[Any], kwargs: dict[str, Any]) -> Any: ...

    async def close(self, wait: bool) -> None: ...


def _timeout_message(task: Task) -> str:
    return f"task {task.name!r} ran past its timeout of {task.settings.timeout:g}s"


class AsyncExecutor:
    """Coroutines on the event loop, at most `limit` at once; a timeout cancels the job."""

    kind = "async"

    def __init__(self, limit: int, on_free: Callable[[], None]) -> None:
        self.limit = limit
        self.running = 0
        self._on_free = on_free

    def capacity(self) -> int:
        return self.limit - self.running

    def acquire(self) -> None:
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._on_free()

    async def run(self, task: Task, args: list[Any], kwargs: dict[str, Any]) -> Any:
        try:
            if task.settings.timeout is None:
                return await task.func(*args, **kwargs)
            try:
                async with asyncio.timeout(task.settings.timeout) as scope:
                    return await task.func(*args, **kwargs)
            except TimeoutError:
                if scope.expired():
                    raise TaskTimeout(_timeout_message(task)) from None
                raise
        finally:
            self.release()

    async def close(self, wait: bool) -> None:
        """Async jobs are tasks of the engine, which cancels them itself."""


class ThreadExecutor:
    """Blocking functions in a thread pool.

    A thread cannot be stopped from outside: past its timeout the job is reported
    timed out, but its thread stays counted as busy until the function returns.
    """

    kind = "io"

    def __init__(self, threads: int, on_free: Callable[[], None]) -> None:
        self.threads = threads
        self.busy = 0
        self._on_free = on_free
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="runner-io")

    def capacity(self) -> int:
        return self.threads - self.busy

    def acquire(self) -> None:
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1
        self._on_free()

    async def run(self, task: Task, args: list[Any], kwargs: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, functools.partial(task.func, *args, **kwargs))
        future.add_done_callback(lambda _: self.release())
        if task.settings.timeout is None:
            return await asyncio.shield(future)
        try:
            async with asyncio.timeout(task.settings.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done():
                raise
            raise TaskTimeout(
                _timeout_message(task) + " (its thread runs on until it returns)"
            ) from None

    async def close(self, wait: bool) -> None:
        await asyncio.to_thread(self._pool.shutdown, wait=wait, cancel_futures=True)

    def retire(self) -> None:
        """Take no more jobs; threads still running finish their job, then end."""
        self._pool.shutdown(wait=False)
