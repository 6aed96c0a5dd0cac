"""A process pool whose workers can be killed one at a time.

concurrent.futures' ProcessPoolExecutor cannot stop one running call: a job
past its timeout would hold its process forever, or breaking the pool would
take every other cpu job with it. Here each worker has its own socket; a job
past its timeout gets its worker killed and replaced, and the other workers
never notice.

The daemon's end of each socket is an asyncio stream: a request is written
and drained, a reply read as one whole frame (see runner.daemon.cpu_worker), so a
payload of any size crosses intact on any loop, uvloop included. The result
stays the JSON text the worker wrote (an orjson.Fragment): the daemon never
decodes it only to encode it again.

A worker that dies is replaced, as is one killed at a timeout. A replacement
that cannot start is logged and tried again, with a growing pause, until it
starts or the pool closes: the pool never shrinks unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import socket
from collections.abc import Awaitable, Callable
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

import orjson

from runner.daemon.cpu_replies import unpack
from runner.daemon.cpu_worker import HEADER, JOB, READY, STOP, worker_main
from runner.daemon.executors import Occupancy, failing
from runner.errors import PayloadError, RunnerError, TaskTimeout
from runner.logs import get_logger
from runner.tasks import Task

log = get_logger()

READY_TIMEOUT_S = 30.0  # a new worker says it is ready within this, or counts as failed
EXIT_WAIT_S = 5.0  # how long a worker may take to exit once asked, or once killed
RETRY_FIRST_S = 0.1  # the pause after a replacement first fails to start; doubles each time
RETRY_MAX_S = 30.0


class WorkerDied(RunnerError):
    """A cpu worker process ended while running a job (or before it was ready)."""


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _how_it_ended(process: BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "closed its socket but kept running (it was killed)"
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return f"was killed by signal {name}"


class _Worker:
    """One worker process and the daemon's end of its socket."""

    def __init__(
        self, process: BaseProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert process.pid is not None  # started
        self.pid: int = process.pid
        self.process = process
        self.reader = reader
        self.writer = writer

    def alive(self) -> bool:
        return not self.reader.at_eof() and self.process.is_alive()

    def post(self, kind: bytes, body: bytes = b"") -> None:
        """Queue a frame (written now if the socket takes it); drain() sees it out."""
        self.writer.writelines((HEADER.pack(kind, len(body)), body))

    async def send(self, kind: bytes, body: bytes = b"") -> None:
        self.post(kind, body)
        await self.writer.drain()

    async def receive(self) -> tuple[bytes, bytes]:
        kind, size = HEADER.unpack(await self.reader.readexactly(HEADER.size))
        return kind, await self.reader.readexactly(size)

    async def death(self, doing: str) -> str:
        """Why the socket closed under us, for WorkerDied."""
        await asyncio.to_thread(self.process.join, EXIT_WAIT_S)
        return f"cpu worker (pid {self.pid}) {_how_it_ended(self.process)} {doing}"

    async def end(self, *, gently: bool = False) -> None:
        """Stop the process (asked first when `gently`, then killed) and close the socket.
        Safe to call again, and on a process that already ended."""
        if gently and not self.writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self.send(STOP)
            await asyncio.to_thread(self.process.join, EXIT_WAIT_S)
        self.abandon()
        await asyncio.to_thread(self.process.join, EXIT_WAIT_S)

    def abandon(self) -> None:
        """Close the socket and kill the process, without waiting for it to go."""
        self.writer.close()
        if self.process.is_alive():
            self.process.kill()


def _start_process(ctx: ForkServerContext) -> tuple[BaseProcess, socket.socket]:
    """Start one worker (blocks: runs in a thread); returns it and our end of its socket."""
    ours, theirs = socket.socketpair()
    with theirs:  # once started, the worker holds its own copy
        try:
            process = ctx.Process(
                target=worker_main, args=(theirs,), name="runner-cpu", daemon=True
            )
            process.start()
        except BaseException:
            ours.close()
            raise
    return process, ours


def _discard_started(starting: asyncio.Future[tuple[BaseProcess, socket.socket]]) -> None:
    """A worker whose starter was cancelled meanwhile: nobody will use it."""
    if starting.cancelled() or starting.exception() is not None:
        return
    process, sock = starting.result()
    sock.close()
    process.kill()


async def _start(ctx: ForkServerContext) -> tuple[BaseProcess, socket.socket]:
    """_start_process in a thread. If the caller is cancelled meanwhile, nothing is left
    running: the process is killed once it has started."""
    starting = asyncio.ensure_future(asyncio.to_thread(_start_process, ctx))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(_discard_started)
        raise


async def _spawn(ctx: ForkServerContext) -> _Worker:
    """A new worker that said it is ready; WorkerDied if it did not."""
    process, sock = await _start(ctx)
    try:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
    except BaseException:
        sock.close()
        process.kill()
        raise
    worker = _Worker(process, reader, writer)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            kind, _ = await worker.receive()
    except TimeoutError:
        worker.abandon()
        raise WorkerDied(
            f"cpu worker (pid {worker.pid}) was not ready within {READY_TIMEOUT_S:g}s"
        ) from None
    except (asyncio.IncompleteReadError, ConnectionError):
        died = WorkerDied(await worker.death("before it was ready"))
        worker.abandon()
        raise died from None
    except BaseException:
        worker.abandon()
        raise
    if kind != READY:
        worker.abandon()
        raise WorkerDied(f"cpu worker (pid {worker.pid}) sent {kind!r} instead of ready")
    return worker


class CpuPool:
    kind = "cpu"

    def __init__(self, processes: int, on_free: Callable[[], None]) -> None:
        self.processes = processes
        self._on_free = on_free
        self._ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has imported their code: a replacement
        # (after a timeout or a cancel) is ready in milliseconds, not a fresh import.
        self._ctx.set_forkserver_preload(["runner.daemon.cpu_worker"])
        self._workers: set[_Worker] = set()  # serving this pool: idle or busy
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._busy: set[_Worker] = set()
        self._no_job = asyncio.Event()  # set while no worker is busy
        self._no_job.set()
        self._reserved = 0
        self._closed = False
        self._closing = asyncio.Event()
        self._replacements: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start every worker; if one cannot start, stop the others and raise why."""
        outcomes = await asyncio.gather(
            *(self._add_worker() for _ in range(self.processes)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                await self.close(wait=False)
                raise outcome

    async def _add_worker(self) -> None:
        worker = await _spawn(self._ctx)
        if self._closed:
            await worker.end()
            return
        self._workers.add(worker)
        self._idle.put_nowait(worker)
        self._on_free()

    def capacity(self) -> int:
        return self._idle.qsize() - self._reserved

    def occupancy(self) -> Occupancy:
        """A timeout kills its worker: no slot is ever held past one."""
        return Occupancy(len(self._busy) + self._reserved, self.capacity())

    def acquire(self) -> None:
        self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1
        if self._closed:
            self._shed_idle()
        self._on_free()

    def worker_pids(self) -> list[int]:
        """The process ids of the workers serving this pool, idle or busy, in order."""
        return sorted(worker.pid for worker in self._workers)

    def begin(
        self, task: Task, args: list[Any], kwargs: dict[str, Any], job_id: str = "",
        queue: str = "default",
    ) -> Awaitable[Any]:  # fmt: skip
        """Send the job now to an idle worker (slots are only taken while one is idle)."""
        try:
            request = orjson.dumps([task.settings.target, args, kwargs])
        except TypeError as exc:
            self.release()
            return failing(PayloadError(
                f"arguments for task {task.name!r} are not JSON-serialisable: {exc}"
            ))  # fmt: skip
        if (worker := self._take_ready()) is not None:
            worker.post(JOB, request)
        return self._run(task, request, worker)

    async def _run(self, task: Task, request: bytes, worker: _Worker | None) -> Any:
        if worker is None:
            worker = await self._take(task)
            worker.post(JOB, request)
        healthy = False
        try:
            async with asyncio.timeout(task.settings.timeout):
                await worker.writer.drain()
                kind, body = await worker.receive()
            healthy = True
        except TimeoutError:
            raise TaskTimeout(
                f"task {task.name!r} ran past its timeout of {task.settings.timeout:g}s; "
                "its cpu worker was killed and replaced"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise WorkerDied(await worker.death(f"while running task {task.name!r}")) from None
        finally:
            self._recycle(worker, healthy)
        return unpack(kind, body)

    def _take_ready(self) -> _Worker | None:
        """An idle live worker for a job holding a slot, or None (it waits in `_take`)."""
        if self._idle.empty():
            return None
        worker = self._idle.get_nowait()
        if not worker.alive():
            self._recycle(worker, healthy=False)
            return None
        self._taken(worker)
        return worker

    async def _take(self, task: Task) -> _Worker:
        """An idle worker for a job that holds a slot. One found dead (killed while idle)
        is replaced and the job waits for a live one, its slot still counted."""
        try:
            while True:
                if self._closed and self._idle.empty():
                    raise WorkerDied(f"the cpu pool closed before task {task.name!r} could start")
                worker = await self._idle.get()
                if worker.alive():
                    break
                self._recycle(worker, healthy=False)
        except BaseException:
            self.release()
            raise
        self._taken(worker)
        return worker

    def _taken(self, worker: _Worker) -> None:
        self._reserved -= 1
        self._busy.add(worker)
        self._no_job.clear()

    def _recycle(self, worker: _Worker, healthy: bool) -> None:
        self._busy.discard(worker)
        if not self._busy:
            self._no_job.set()
        if healthy and not self._closed:
            self._idle.put_nowait(worker)
            self._on_free()
            return
        self._workers.discard(worker)
        worker.abandon()
        replacement = asyncio.get_running_loop().create_task(
            self._replace(worker), name="cpu-worker-replace"
        )
        self._replacements.add(replacement)
        replacement.add_done_callback(self._replacement_done)

    async def _replace(self, worker: _Worker) -> None:
        """End `worker`; unless the pool is closing, start another, trying until one starts."""
        await worker.end()
        pause = RETRY_FIRST_S
        while not self._closed:
            try:
                await self._add_worker()
            except Exception as exc:  # whatever stops a start now may pass: log, pause, retry
                log.error(
                    "cpu worker could not be replaced; retrying",
                    error=_error_text(exc), retry_in_s=pause, processes=len(self._workers),
                )  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._closing.wait()
                pause = min(pause * 2, RETRY_MAX_S)
            else:
                return

    def _replacement_done(self, replacement: asyncio.Task[None]) -> None:
        self._replacements.discard(replacement)
        if not replacement.cancelled() and (exc := replacement.exception()) is not None:
            log.error(
                "cpu worker replacement failed; the pool is one process short",
                error=_error_text(exc), processes=len(self._workers),
            )  # fmt: skip

    async def retire(self) -> None:
        """Stop taking jobs: idle workers go now, except one for each slot already taken
        (its job is on its way); busy ones go when their job ends."""
        self._close()
        self._shed_idle()
        await asyncio.gather(*self._replacements, return_exceptions=True)

    def _shed_idle(self) -> None:
        """In a closed pool, end the idle workers that no taken slot is waiting for."""
        while self._idle.qsize() > self._reserved:
            self._recycle(self._idle.get_nowait(), healthy=False)

    async def close(self, wait: bool) -> None:
        """Stop every worker. With `wait`, running jobs finish first and idle workers are
        asked to exit; without, every worker is killed now."""
        self._close()
        if wait:
            await self._no_job.wait()
        else:
            for replacement in self._replacements:
                replacement.cancel()
        while not self._idle.empty():
            self._idle.get_nowait()
        workers, self._workers = self._workers, set()
        await asyncio.gather(
            *(worker.end(gently=wait) for worker in workers),
            *self._replacements,
            return_exceptions=True,
        )

    def _close(self) -> None:
        self._closed = True
        self._closing.set()
