"""A process pool whose workers can be killed one at a time.

concurrent.futures' ProcessPoolExecutor cannot stop one running call: a job
past its timeout would hold its process forever, or breaking the pool would
take every other cpu job with it. Here each worker has its own pipe; a job past
its timeout gets its worker killed and replaced, and the other workers never
notice.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import orjson

from runner.cpu_worker import READY, worker_main
from runner.errors import RunnerError, TaskTimeout, UnserialisableResult
from runner.tasks import Task


class WorkerDied(RunnerError):
    """A cpu worker process exited while running a job."""


class TaskError(RunnerError):
    """A task raised inside a cpu worker; the message carries its traceback."""


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process: BaseProcess = ctx.Process(
            target=worker_main, args=(child,), name="runner-cpu", daemon=True
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _receive(conn: Connection, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    """A future for the next message on `conn`, read when the loop sees it readable."""
    future: asyncio.Future[Any] = loop.create_future()

    def on_readable() -> None:
        loop.remove_reader(conn.fileno())
        if future.done():
            return
        try:
            future.set_result(conn.recv())
        except (EOFError, OSError) as exc:
            future.set_exception(WorkerDied(f"cpu worker exited: {exc or 'pipe closed'}"))

    loop.add_reader(conn.fileno(), on_readable)
    return future


class CpuPool:
    kind = "cpu"

    def __init__(self, processes: int, on_free: Callable[[], None]) -> None:
        self.processes = processes
        self._on_free = on_free
        self._ctx = multiprocessing.get_context("forkserver")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._busy: set[_Worker] = set()
        self._reserved = 0
        self._starting = 0
        self._closed = False
        self._replacements: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await asyncio.gather(*(self._add_worker() for _ in range(self.processes)))

    async def _add_worker(self) -> None:
        self._starting += 1
        try:
            loop = asyncio.get_running_loop()
            worker = await asyncio.to_thread(_Worker, self._ctx)
            hello = await _receive(worker.conn, loop)
            if hello != READY:
                raise WorkerDied(f"cpu worker sent {hello!r} instead of ready")
        finally:
            self._starting -= 1
        if self._closed:
            worker.kill()
            return
        self._idle.put_nowait(worker)
        self._on_free()

    def capacity(self) -> int:
        return self._idle.qsize() - self._reserved

    def acquire(self) -> None:
        self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1
        self._on_free()

    async def run(self, task: Task, args: list[Any], kwargs: dict[str, Any]) -> Any:
        self._reserved -= 1
        worker = await self._idle.get()  # immediate unless more jobs were let in than workers
        self._busy.add(worker)
        loop = asyncio.get_running_loop()
        healthy = False
        try:
            reply = _receive(worker.conn, loop)
            worker.conn.send((task.settings.target, args, kwargs))
            async with asyncio.timeout(task.settings.timeout):
                status, payload = await reply
            healthy = True
        except TimeoutError:
            raise TaskTimeout(
                f"task {task.name!r} ran past its timeout of {task.settings.timeout:g}s; "
                "its cpu worker was killed and replaced"
            ) from None
        finally:
            self._busy.discard(worker)
            if not reply.done():
                loop.remove_reader(worker.conn.fileno())
            self._recycle(worker, healthy)
        return _unpack(status, payload)

    def _recycle(self, worker: _Worker, healthy: bool) -> None:
        if healthy and not self._closed:
            self._idle.put_nowait(worker)
            self._on_free()
            return
        replacement = asyncio.get_running_loop().create_task(
            self._replace(worker), name="cpu-worker-replace"
        )
        self._replacements.add(replacement)
        replacement.add_done_callback(self._replacements.discard)

    async def _replace(self, worker: _Worker) -> None:
        await asyncio.to_thread(worker.kill)
        if not self._closed:
            await self._add_worker()

    def busy(self) -> int:
        return len(self._busy)

    async def retire(self) -> None:
        """Stop taking jobs: idle workers go now, busy ones when their job ends."""
        self._closed = True
        idle = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        await asyncio.to_thread(_kill_all, idle)

    async def close(self, wait: bool) -> None:
        self._closed = True
        for replacement in list(self._replacements):
            replacement.cancel()
        workers = [*self._busy]
        while not self._idle.empty():
            workers.append(self._idle.get_nowait())
        for worker in workers:
            if wait and worker.process.is_alive():
                worker.conn.send(None)
        await asyncio.to_thread(_kill_all, workers)


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()


def _unpack(status: str, payload: str) -> Any:
    if status == "ok":
        return orjson.Fragment(payload)
    if status == "unserialisable":
        raise UnserialisableResult(payload)
    raise TaskError(payload)
