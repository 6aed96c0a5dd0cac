"""One attempt of one job: decode, run on its executor, decide the outcome, log it.

Bad input never escapes as an exception: an unknown task, a payload that does
not decode, arguments that do not fit the function, a result that JSON cannot
hold or one larger than `[jobs] max_result` each end the job `failed` with the
reason (no retry: trying again cannot help), and the daemon runs on. Whatever a
task raises, SystemExit and KeyboardInterrupt included, is the job's failure,
never the daemon's.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

import orjson

from runner.clock import Clock
from runner.daemon.backoff import backoff_seconds
from runner.daemon.executors import Executor
from runner.daemon.hand_out import HandOutFailed
from runner.daemon.metrics import Metrics
from runner.errors import (
    PayloadError,
    RunnerError,
    TaskTimeout,
    UnknownTask,
    UnserialisableResult,
)
from runner.jobs import ClaimedJob, Outcome
from runner.logs import get_logger, job_line
from runner.tasks import Task, TaskRegistry
from runner.workflows.fan_out import is_fan_out

log = get_logger()


class ResultTooLarge(RunnerError):
    """A task returned a result larger, as JSON, than [jobs] max_result."""


_PERMANENT = (UnknownTask, PayloadError, UnserialisableResult, ResultTooLarge, HandOutFailed)

# A run's fan-out enqueued (runner/daemon/hand_out.py): its summary and the jobs that
# stand for it, both JSON.
HandOutFn = Callable[[ClaimedJob, dict[str, Any]], Awaitable[tuple[str, str]]]


def _decode(job: ClaimedJob) -> tuple[list[Any], dict[str, Any]]:
    try:
        args, kwargs = orjson.loads(job.args_json), orjson.loads(job.kwargs_json)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"job {job.id!r}: stored arguments are not valid JSON ({exc})") from None
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise PayloadError(
            f"job {job.id!r}: args must be a JSON array and kwargs a JSON object, "
            f"got {type(args).__name__} and {type(kwargs).__name__}"
        )
    return args, kwargs


def _encode_result(task: Task, result: Any) -> str:
    try:
        return orjson.dumps(result).decode()
    except TypeError as exc:
        raise UnserialisableResult(
            f"task {task.name!r} returned {type(result).__name__}, which is not "
            f"JSON-serialisable ({exc}); return JSON types (dict, list, str, number, bool, None)"
        ) from None


def _check_result_size(task: Task, result_json: str, limit: int) -> None:
    """A result is stored in Redis and twice in Postgres (the job's row and its last
    event): like a payload, a huge one is refused, and its job fails."""
    if len(result_json) <= limit // 4:  # 4 bytes a character at most
        return
    size = len(result_json.encode())
    if size > limit:
        raise ResultTooLarge(
            f"task {task.name!r} returned {size:,} bytes as JSON, over the limit of "
            f"{limit:,} ([jobs] max_result in the daemon's config); keep large data in a "
            "file, a table or object storage and return its name, or raise the limit"
        )


def _being_cancelled() -> bool:
    """Whether the running task was asked to stop (the daemon's shutdown), as opposed
    to a task that raised CancelledError of its own accord."""
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0


def arguments_misfit(
    func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> str | None:
    """Why `args` and `kwargs` cannot be passed to `func`, or None if they can.

    Asked only after a TypeError, so the hot path never pays for a signature.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: cannot tell
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"{exc}; the function is {getattr(func, '__name__', 'task')}{signature}"
    return None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (*_PERMANENT, TaskTimeout)):
        return str(exc)
    if getattr(exc, "type_name", None):  # raised in a cpu worker: already "Type: message"
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _misfit(task: Task, exc: BaseException, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """After a TypeError (raised here or, for cpu tasks, in the worker): whether the
    arguments simply do not fit the function, which no retry can fix."""
    if not (isinstance(exc, TypeError) or getattr(exc, "type_name", None) == "TypeError"):
        return None
    return arguments_misfit(task.func, args, kwargs)


class JobExecution:
    """Runs claimed jobs and hands each outcome to `finish`."""

    def __init__(
        self,
        registry: TaskRegistry,
        executors: Mapping[str, Executor],
        finish: Callable[[Outcome], None],
        clock: Clock,
    ) -> None:
        self.registry = registry
        self.executors = executors
        self.finish = finish
        self.clock = clock
        self.metrics: Metrics | None = None
        self.hand_out: HandOutFn | None = None  # set by the daemon: fan-outs enqueued

    def start(self, job: ClaimedJob, slot: Executor) -> Coroutine[Any, Any, None] | None:
        """Begin one attempt now: its work is handed to its executor before this returns
        (see runner.daemon.executors). The coroutine returned sees it to its outcome; None
        when the job ended before it could begin (its outcome is already given).

        `slot` is the executor whose slot was acquired at claim time (after a reload it
        may no longer be the current one for its kind)."""
        started = time.perf_counter()
        try:
            task, args, kwargs = self.prepare(job)
        except Exception as exc:
            slot.release()
            self._log_started(job)
            self._failed(job, exc, started)
            return None
        executor = slot
        if task.kind != job.kind:  # the config changed the task's kind since it was enqueued
            slot.release()
            executor = self.executors[task.kind]
            executor.acquire()
        work = executor.begin(task, args, kwargs, job.id, job.queue)  # frees the slot when done
        self._log_started(job)
        return self._see_through(job, task, work, started=started, args=args, kwargs=kwargs)

    def prepare(self, job: ClaimedJob) -> tuple[Task, list[Any], dict[str, Any]]:
        """The job's task (with its own timeout, if an update set one) and arguments;
        raises what makes the job fail before it begins (an unknown task, bad JSON)."""
        task = self.registry.get(job.task)
        if job.timeout is not None:  # set for this job by an update
            task = replace(task, settings=replace(task.settings, timeout=job.timeout))
        args, kwargs = _decode(job)
        return task, args, kwargs

    def adopt(
        self, job: ClaimedJob, task: Task, work: Awaitable[Any], *,
        args: list[Any], kwargs: dict[str, Any], started: float,
    ) -> Coroutine[Any, Any, None]:  # fmt: skip
        """A job an io thread claimed and began on its own (self_claim.py): logged and
        seen to its outcome from here, as any other."""
        self._log_started(job)
        return self._see_through(job, task, work, started=started, args=args, kwargs=kwargs)

    def _log_started(self, job: ClaimedJob) -> None:
        job_line("job started", job_id=job.id, task=job.task, attempt=job.attempt, state="running")
        if self.metrics is not None:
            self.metrics.started(job.task, time.time() - job.due_at_ms / 1000)

    async def _see_through(
        self, job: ClaimedJob, task: Task, work: Awaitable[Any], *,
        started: float, args: list[Any], kwargs: dict[str, Any],
    ) -> None:  # fmt: skip
        hand_over = ""
        try:
            result = await work
            if self.hand_out is not None and is_fan_out(result):
                result_json, hand_over = await self.hand_out(job, result)
            else:
                result_json = _encode_result(task, result)
            _check_result_size(task, result_json, self.registry.max_result)
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise
            self._failed(job, exc, started, _misfit(task, exc, args, kwargs))
            return
        except BaseException as exc:  # whatever a task raises is its job's failure
            self._failed(job, exc, started, _misfit(task, exc, args, kwargs))
            return
        seconds = time.perf_counter() - started
        duration_ms = round(seconds * 1000, 3)
        if self.metrics is not None:
            self.metrics.ran(job.task, seconds)
        self.finish(
            Outcome(
                job.id,
                job.attempt,
                job.claim,
                "succeed",
                result_json=result_json,
                detail_json=f'{{"result":{result_json},"duration_ms":{duration_ms}}}',
                queue=job.queue,
                hand_over=hand_over,
            )
        )
        job_line("job succeeded", job_id=job.id, task=job.task, attempt=job.attempt,
                 state="succeeded", duration_ms=duration_ms)  # fmt: skip

    def _failed(
        self, job: ClaimedJob, exc: BaseException, started: float, misfit: str | None = None
    ) -> None:
        seconds = time.perf_counter() - started
        duration_ms = round(seconds * 1000, 3)
        if self.metrics is not None:
            self.metrics.ran(job.task, seconds)
        if misfit is not None:
            exc = PayloadError(
                f"job {job.id!r}: its arguments do not fit task {job.task!r}: {misfit}; "
                "retrying cannot help"
            )
        error = _error_text(exc)
        retry_in = self._retry_delay(job, exc)
        detail: dict[str, Any] = {"error": error, "duration_ms": duration_ms}
        if retry_in is None:
            action, due_at, state = "fail", None, "failed"
        else:
            action, state = "retry_later", "retrying"
            due_at = self.clock.now_ms() + int(retry_in * 1000)
            detail["due_at"] = due_at
        self.finish(
            Outcome(
                job.id,
                job.attempt,
                job.claim,
                action,
                due_at_ms=due_at,
                error=error,
                detail_json=orjson.dumps(detail).decode(),
                queue=job.queue,
            )
        )
        log.warning(
            "job failed" if retry_in is None else "job will retry",
            job_id=job.id,
            task=job.task,
            attempt=job.attempt,
            state=state,
            duration_ms=duration_ms,
            error=error,
            retry_in_s=retry_in,
        )

    def _retry_delay(self, job: ClaimedJob, exc: BaseException) -> float | None:
        if isinstance(exc, _PERMANENT) or job.attempt >= job.max_attempts:
            return None
        if job.task not in self.registry:  # removed by a reload while the job ran
            return None
        task = self.registry.get(job.task)
        return round(backoff_seconds(task.settings, job.attempt), 3)
