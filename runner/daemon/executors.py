"""Where a job's code runs: on the loop (async), in threads (io), in processes (cpu).

Each executor reports how many more jobs it can start right now; the pump
claims no more than that (no prefetch). A slot is taken synchronously when a
job is claimed (`acquire`), before its task first runs, so the next claim
already sees it; `begin` then owns the slot and frees it when the work really
ends, and `release` gives back a slot that will not be used. Each calls
`on_free` when a slot frees, so the pump can claim again at once.

`begin` is called while the claim's reply is handled, not from the job's own
task: a thread or a worker process has its job before the loop moves on to log
it, so the time from a free slot to the next body running is one claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from runner.errors import TaskTimeout
from runner.tasks import Task


@dataclass(frozen=True)
class Occupancy:
    """A pool's slots now, for operators asking why work waits: in use, free, and of
    those in use, the ones still held by jobs past their timeout (an io thread cannot
    be stopped), oldest first, each (job id, since when in ms)."""

    in_use: int
    free: int
    held: tuple[tuple[str, int], ...] = ()

    def as_json(self) -> dict[str, Any]:
        oldest = {"job_id": self.held[0][0], "since": self.held[0][1]} if self.held else None
        return {"in_use": self.in_use, "free": self.free, "held": len(self.held),
                "oldest_held": oldest}  # fmt: skip


class Executor(Protocol):
    kind: str

    def capacity(self) -> int: ...

    def occupancy(self) -> Occupancy: ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    def begin(
        self, task: Task, args: list[Any], kwargs: dict[str, Any], job_id: str = "",
        queue: str = "default",
    ) -> Awaitable[Any]:  # fmt: skip
        """Begin the work now where the executor can; the awaitable gives its result.
        `queue`: the job's, where an io thread looks for its own next job."""
        ...

    async def close(self, wait: bool) -> None: ...


async def failing(exc: BaseException) -> Any:
    """An awaitable that fails with `exc`: work refused before it could begin fails
    where the job's outcome is decided, like work that failed running."""
    raise exc


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

    def occupancy(self) -> Occupancy:
        return Occupancy(self.running, self.capacity())  # a timeout frees its slot

    def acquire(self) -> None:
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._on_free()

    def begin(
        self, task: Task, args: list[Any], kwargs: dict[str, Any], job_id: str = "",
        queue: str = "default",
    ) -> Awaitable[Any]:  # fmt: skip
        return self._run(task, args, kwargs)  # runs on the loop: it begins when awaited

    async def _run(self, task: Task, args: list[Any], kwargs: dict[str, Any]) -> Any:
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


# A thread's own next job (runner/daemon/self_claim.py): given the queue of the job
# that just ended, the next one's call, the future its outcome goes to, and its queue;
# None when there is none (the thread is free, and the pump claims as before).
NextJob = Callable[[str], "tuple[Callable[[], Any], Future[Any], str] | None"]


class ThreadExecutor:
    """Blocking functions in a thread pool.

    A thread cannot be stopped from outside: past its timeout the job is reported
    timed out, but its thread stays counted as busy until the function returns.
    Every thread starts with the pool, not with the first jobs: the first claim
    then starts a full pool's work at once instead of one new thread at a time.
    With `next_job`, a thread whose job ended claims its own next job and runs it,
    keeping its slot: the loop takes that job over (its lease, cancel, timeout and
    logs) while it already runs.
    """

    kind = "io"

    def __init__(
        self, threads: int, on_free: Callable[[], None], next_job: NextJob | None = None
    ) -> None:
        self.threads = threads
        self.busy = 0
        self._on_free = on_free
        self.next_job = next_job
        # Threads whose job ran past its timeout: (job id, since when in ms), in order.
        self._overdue: dict[asyncio.Future[Any], tuple[str, int]] = {}
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="runner-io")
        _in_every_thread(self._pool, threads, None)  # every thread started now

    def capacity(self) -> int:
        return self.threads - self.busy

    def occupancy(self) -> Occupancy:
        return Occupancy(self.busy, self.capacity(), tuple(self._overdue.values()))

    def acquire(self) -> None:
        self.busy += 1

    def release(self) -> None:
        self.busy -= 1
        self._on_free()

    def begin(
        self, task: Task, args: list[Any], kwargs: dict[str, Any], job_id: str = "",
        queue: str = "default",
    ) -> Awaitable[Any]:  # fmt: skip
        first: Future[Any] = Future()
        call = functools.partial(task.func, *args, **kwargs)
        try:
            thread = self._pool.submit(self._run_on, call, first, queue)
        except RuntimeError as exc:  # the pool was shut down: the job's failure, told later
            self.release()
            return failing(exc)
        asyncio.wrap_future(thread).add_done_callback(self._freed)
        return self.result(task, first, job_id)

    def _run_on(self, call: Callable[[], Any], outcome: Future[Any], queue: str) -> None:
        """In the thread: run the job, then the thread's own next ones while it finds
        any (next_job), each outcome into its own future."""
        while True:
            try:
                outcome.set_result(call())
            except BaseException as exc:  # whatever a task raises is its job's failure
                outcome.set_exception(exc)
            next_job = self.next_job
            found = next_job(queue) if next_job is not None else None
            if found is None:
                return
            call, outcome, queue = found

    def _freed(self, thread: asyncio.Future[Any]) -> None:
        """The thread is free again (its last job ended and it found no next one)."""
        if not thread.cancelled():
            thread.exception()
        self.release()

    def result(self, task: Task, outcome: Future[Any], job_id: str) -> Awaitable[Any]:
        """The job's outcome, as it comes from its thread, timed out on the loop."""
        future = asyncio.wrap_future(outcome)
        future.add_done_callback(self._ended)
        return self._result(task, future, job_id)

    def drop(self, outcome: Future[Any]) -> None:
        """A job's outcome nobody waits for (it was cancelled before the loop took it
        over): read when it comes, so that no error goes unretrieved."""
        asyncio.wrap_future(outcome).add_done_callback(self._ended)

    def _ended(self, future: asyncio.Future[Any]) -> None:
        """The function returned. Its error is read here too: when its job was
        cancelled or timed out meanwhile, nobody awaits it any more, and asyncio would
        report it at collection as never retrieved."""
        if not future.cancelled():
            future.exception()
        self._overdue.pop(future, None)

    async def _result(self, task: Task, future: asyncio.Future[Any], job_id: str) -> Any:
        if task.settings.timeout is None:
            return await asyncio.shield(future)
        try:
            async with asyncio.timeout(task.settings.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done():
                raise
            self._overdue[future] = (job_id, int(time.time() * 1000))
            raise TaskTimeout(
                _timeout_message(task) + " (its thread runs on until it returns)"
            ) from None

    def in_every_thread(self, call: Callable[[], None]) -> None:
        """Run `call` once in each thread, now, while the pool is idle (the daemon's
        start): what a thread keeps for itself, made before its first job needs it."""
        _in_every_thread(self._pool, self.threads, call)

    async def close(self, wait: bool) -> None:
        self.next_job = None
        await asyncio.to_thread(self._pool.shutdown, wait=wait, cancel_futures=True)

    def retire(self) -> None:
        """Take no more jobs; threads still running finish their job, then end."""
        self.next_job = None
        self._pool.shutdown(wait=False)


def _in_every_thread(
    pool: ThreadPoolExecutor, threads: int, then: Callable[[], None] | None
) -> None:
    """Have each of the pool's `threads` threads run `then` once, now, without waiting
    for them: each of `threads` calls waits for all the others, so no thread is free
    to take a second one (and the pool starts a new thread for each it lacks)."""
    barrier = threading.Barrier(threads)

    def wait_for_all() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):  # one failed: make do
            barrier.wait(timeout=10.0)
        if then is not None:
            then()

    for _ in range(threads):
        pool.submit(wait_for_all)
