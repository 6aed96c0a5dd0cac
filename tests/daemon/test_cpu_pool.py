"""The cpu process pool on its own: payloads of any size, workers that die, tasks that
raise anything, timeouts, replacements that fail.

The daemon runs on uvloop, whose add_reader makes a pipe non-blocking, so each
scenario runs on a uvloop loop of its own (uvloop.run) rather than on the
plugin's asyncio loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop
from structlog.testing import CapturingLogger

from runner.config.settings import TaskSettings
from runner.daemon import cpu_pool
from runner.daemon.cpu_pool import CpuPool, WorkerDied
from runner.daemon.cpu_replies import TaskError
from runner.errors import PayloadError, TaskTimeout
from runner.tasks import Task
from tests.daemon import cpu_tasks
from tests.waiting import eventually

Scenario = Callable[[CpuPool], Coroutine[Any, Any, None]]


def cpu_task(func: Callable[..., Any], timeout: float | None = 20) -> Task:
    target = f"tests.daemon.cpu_tasks:{func.__name__}"
    return Task(TaskSettings(name=func.__name__, target=target, kind="cpu", timeout=timeout), func)


def on_uvloop(scenario: Scenario, processes: int = 1) -> None:
    """Runs `scenario` with a started pool of `processes` workers on a uvloop loop."""

    async def main() -> None:
        pool = CpuPool(processes, lambda: None)
        await pool.start()
        try:
            async with asyncio.timeout(60):
                await scenario(pool)
        finally:
            await pool.close(wait=False)

    uvloop.run(main())


async def call(pool: CpuPool, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs one job as the engine does (take a slot, run) and decodes its result."""
    pool.acquire()
    result = await pool.begin(cpu_task(func), list(args), kwargs)
    return orjson.loads(orjson.dumps(result))


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie counts as ended). A process reaped
    between the open and the read of its stat file makes the read fail with ESRCH."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


@pytest.mark.parametrize("run", [uvloop.run, asyncio.run], ids=["uvloop", "asyncio"])
def test_megabyte_arguments_and_results_cross_whole(run: Callable[..., None]) -> None:
    """1 MB of arguments and a 1 MB result, several times over on one worker: each
    arrives whole (no BlockingIOError from a pipe the loop made non-blocking)."""
    megabyte = 1 << 20

    async def main() -> None:
        pool = CpuPool(1, lambda: None)
        await pool.start()
        try:
            for _ in range(5):
                reply = await call(pool, cpu_tasks.sized_reply, "a" * megabyte, megabyte)
                assert reply == {"received": megabyte, "reply": "r" * megabyte}
        finally:
            await pool.close(wait=False)

    run(main())


def test_result_arrives_as_json_text() -> None:
    """The result crosses as JSON text and stays so: an orjson.Fragment, not
    decoded in the daemon only to be encoded again."""

    async def scenario(pool: CpuPool) -> None:
        pool.acquire()
        result = await pool.begin(cpu_task(cpu_tasks.sized_reply), ["abc", 2], {})
        assert isinstance(result, orjson.Fragment)
        assert orjson.dumps(result) == b'{"received":3,"reply":"rr"}'

    on_uvloop(scenario)


def test_arguments_that_json_cannot_carry_are_refused() -> None:
    """Payloads are JSON, never pickle: arguments JSON cannot hold fail the job with
    PayloadError before they reach a worker, and the worker serves the next job."""

    async def scenario(pool: CpuPool) -> None:
        before = await call(pool, cpu_tasks.pid)
        with pytest.raises(PayloadError, match="not JSON-serialisable"):
            await call(pool, cpu_tasks.sized_reply, {1, 2}, 1)
        assert pool.capacity() == 1
        assert await call(pool, cpu_tasks.pid) == before

    on_uvloop(scenario)


def test_a_worker_that_exits_names_its_code_and_is_replaced() -> None:
    """os._exit(3) in a task: WorkerDied names the pid, the exit code and the task;
    the pool is back to its size with a new process, which runs the next job."""

    async def scenario(pool: CpuPool) -> None:
        [dead] = pool.worker_pids()
        with pytest.raises(WorkerDied) as died:
            await call(pool, cpu_tasks.exit_hard, 3)
        assert str(died.value) == (
            f"cpu worker (pid {dead}) exited with code 3 while running task 'exit_hard'"
        )
        fresh = await call(pool, cpu_tasks.pid)
        assert fresh != dead
        assert pool.worker_pids() == [fresh]

    on_uvloop(scenario)


def test_a_worker_killed_by_a_signal_names_the_signal() -> None:
    """A segfault in a task, then a SIGKILL from outside during a job: each WorkerDied
    names its signal, and a replaced worker runs the next job."""

    async def scenario(pool: CpuPool) -> None:
        [first] = pool.worker_pids()
        with pytest.raises(WorkerDied, match=r"was killed by signal SIGSEGV") as died:
            await call(pool, cpu_tasks.segfault)
        assert f"(pid {first})" in str(died.value) and "task 'segfault'" in str(died.value)
        second = await call(pool, cpu_tasks.pid)
        assert second != first
        job = asyncio.create_task(call(pool, cpu_tasks.sleep, 30))
        await eventually(lambda: any(w.pid == second for w in pool._busy))  # the job is sent
        os.kill(second, signal.SIGKILL)
        with pytest.raises(WorkerDied, match=r"was killed by signal SIGKILL"):
            await job
        assert await call(pool, cpu_tasks.pid) not in (first, second)

    on_uvloop(scenario)


def test_a_worker_killed_while_idle_does_not_fail_the_next_job() -> None:
    """An idle worker killed from outside is noticed when a job would take it: the job
    runs on its replacement instead of failing."""

    async def scenario(pool: CpuPool) -> None:
        [dead] = pool.worker_pids()
        os.kill(dead, signal.SIGKILL)
        # Reaped, not only a zombie: a zombie's other threads (its hang-up watch) may
        # still hold its socket open, and then nothing can tell it from a live one.
        await eventually(lambda: not Path(f"/proc/{dead}").exists())
        assert await call(pool, cpu_tasks.pid) != dead

    on_uvloop(scenario)


@pytest.mark.parametrize(
    ("func", "args", "error"),
    [
        (cpu_tasks.system_exit, [3], "SystemExit: 3"),
        (cpu_tasks.interrupt, [], "KeyboardInterrupt"),
        (cpu_tasks.generator_exit, [], "GeneratorExit"),
    ],
)
def test_base_exceptions_fail_the_job_and_keep_the_worker(
    func: Callable[..., Any], args: list[Any], error: str
) -> None:
    """SystemExit, KeyboardInterrupt and GeneratorExit raised by a task are its job's
    TaskError, named with its traceback; the same worker process runs the next job."""

    async def scenario(pool: CpuPool) -> None:
        before = await call(pool, cpu_tasks.pid)
        with pytest.raises(TaskError) as raised:
            await call(pool, func, *args)
        assert str(raised.value).startswith(f"{error}\nTraceback")
        assert raised.value.type_name == error.partition(":")[0]
        assert await call(pool, cpu_tasks.pid) == before

    on_uvloop(scenario)


def test_task_error_names_the_exception_class() -> None:
    """TaskError.type_name is the class of what the task raised, so a TypeError can be
    told from others; the message starts with the class and the text."""

    async def scenario(pool: CpuPool) -> None:
        raisers = {"TypeError": cpu_tasks.wrong_type, "ValueError": cpu_tasks.wrong_value}
        for type_name, func in raisers.items():
            with pytest.raises(TaskError) as raised:
                await call(pool, func, 7)
            assert raised.value.type_name == type_name
            assert str(raised.value).startswith(f"{type_name}: ")

    on_uvloop(scenario)


def test_a_job_past_its_timeout_has_its_worker_killed_and_replaced() -> None:
    """TaskTimeout after the task's timeout, not after the task; its worker is killed
    and a new process runs the next job, keeping the pool at its size."""

    async def scenario(pool: CpuPool) -> None:
        [slow_pid, other] = sorted(pool.worker_pids())
        pool.acquire()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TaskTimeout, match=r"ran past its timeout of 0\.3s"):
            await pool.begin(cpu_task(cpu_tasks.sleep, timeout=0.3), [30], {})
        assert loop.time() - started < 5
        await eventually(lambda: len(pool.worker_pids()) == 2)
        pids = pool.worker_pids()
        assert len(pids) == 2 and len({slow_pid, other} & set(pids)) == 1

    on_uvloop(scenario, processes=2)


def test_a_failed_replacement_is_logged_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a replacement worker fails twice: each failure is logged with the
    delay before the next try, and the third try restores the pool."""
    logger = CapturingLogger()
    monkeypatch.setattr(cpu_pool, "log", logger)
    real_start = cpu_pool._start_process
    failures = iter([OSError("forkserver is gone"), OSError("forkserver is gone")])

    def flaky_start(ctx: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_start(ctx)

    async def scenario(pool: CpuPool) -> None:
        monkeypatch.setattr(cpu_pool, "_start_process", flaky_start)
        with pytest.raises(WorkerDied):
            await call(pool, cpu_tasks.exit_hard, 1)
        assert isinstance(await call(pool, cpu_tasks.pid), int)
        assert len(pool.worker_pids()) == 1

    on_uvloop(scenario)
    errors = [c for c in logger.calls if c.method_name == "error"]
    assert [c.args for c in errors] == [("cpu worker could not be replaced; retrying",)] * 2
    assert [c.kwargs["error"] for c in errors] == ["OSError: forkserver is gone"] * 2
    delays = [c.kwargs["retry_in_s"] for c in errors]
    assert 0 < delays[0] < delays[1]


def test_slots_taken_before_a_retire_keep_their_workers_until_used() -> None:
    """A retired pool (a reload resized it) keeps a worker for each slot already taken:
    the job of one runs, the other slot is given back, and then no worker is left."""

    async def scenario(pool: CpuPool) -> None:
        pool.acquire()
        pool.acquire()
        await pool.retire()
        assert len(pool.worker_pids()) == 2
        result = await pool.begin(cpu_task(cpu_tasks.pid), [], {})
        ran_on = orjson.loads(orjson.dumps(result))
        [kept] = pool.worker_pids()
        assert kept != ran_on
        pool.release()
        assert pool.worker_pids() == []
        await eventually(lambda: gone(ran_on) and gone(kept))

    on_uvloop(scenario, processes=3)


def test_a_worker_whose_daemon_died_mid_job_exits_quietly() -> None:
    """A daemon SIGKILLed while its worker runs a long job: the worker sees the socket
    hang up and leaves at once, mid-job, with code 0 (nobody is left to take the result;
    the job runs again once its lease expires)."""
    from runner.daemon.cpu_worker import JOB, READY, receive_frame, send_frame, worker_main  # noqa: PLC0415

    ctx = multiprocessing.get_context("forkserver")  # as the pool: no inherited copy of `parent`
    parent, child = socket.socketpair()
    worker = ctx.Process(target=worker_main, args=(child,))
    worker.start()
    child.close()
    assert receive_frame(parent)[0] == READY
    target = "tests.daemon.cpu_tasks:sleep"
    send_frame(parent, JOB, orjson.dumps([target, [600], {}]))
    parent.close()  # the daemon is gone long before the reply
    worker.join(10)
    if worker.exitcode is None:  # still in its job: end it, then fail
        worker.kill()
        worker.join(10)
        raise AssertionError("the worker ran on after its daemon's socket closed")
    assert worker.exitcode == 0
