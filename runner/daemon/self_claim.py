"""A freed io thread claims its own next job, and the loop takes it over.

Without this, a thread whose job ends goes idle: the loop frees its slot, wakes
the pump, claims, and hands the thread the next job. Every step waits for the
loop, which is busy with every other job's outcome and log line, so an io pool
working through a backlog lost milliseconds a job between two bodies.

Here the thread itself makes the same fenced claim (store ThreadClaims: claim.lua
for one io job of the queue it served) and runs the job at once, keeping its
slot. The loop is told at the same moment and owns the job from then on, as if
the pump had claimed it: its lease is renewed, a cancel stops it (the thread's
result is dropped, as for any io job), its timeout runs, its lines are logged,
its outcome is sent. A job the thread cannot run (an unknown task, arguments
that are not JSON, a task no longer io) goes to the loop's usual start, which
fails it or runs it where it belongs.

Only while the daemon serves one queue: with several, the pump shares the slots
out by the queues' weights, which a thread claiming from its own queue would undo.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from runner.clock import Clock
from runner.daemon.execution import JobExecution
from runner.daemon.executors import Executor, ThreadExecutor
from runner.daemon.pump import Pump
from runner.jobs import ClaimedJob
from runner.logs import get_logger
from runner.store import ThreadClaims
from runner.tasks import Task

if TYPE_CHECKING:
    from runner.config.settings import Settings
    from runner.servers.connect import Connections

log = get_logger()

PAUSE_AFTER_ERROR_S = 1.0  # Redis did not answer a thread's claim: leave claims to the pump

NextCall = tuple[Callable[[], Any], Future[Any], str]


class SelfClaims:
    """The threads' side: claim, prepare, tell the loop, hand the call back."""

    def __init__(
        self, claims: ThreadClaims, pump: Pump, execution: JobExecution, runs: Adoptions,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.claims = claims
        self.pump = pump
        self.execution = execution
        self.runs = runs
        self.clock = clock
        self.loop = asyncio.get_running_loop()
        self._quiet_until = 0.0  # monotonic

    def next_job(self, queue: str) -> NextCall | None:
        """In an io thread whose job from `queue` just ended: its next job's call, the
        future for its outcome and its queue; None when it should go idle."""
        if not self._may_claim(queue):
            return None
        now = self.clock.now_ms()
        pump = self.pump
        found = self.claims.claim_one(
            queue, "io", now, pump.daemon, lease_until_ms=now + pump.lease_ms,
            aging_ms=pump.aging_ms,
        )  # fmt: skip
        if found is None:
            self._quiet_until = time.monotonic() + PAUSE_AFTER_ERROR_S
            return None
        if found.set_aside:
            self._tell(pump.note_set_aside, queue, found.set_aside)
        if not found.jobs:
            return None
        job, started = found.jobs[0], time.perf_counter()
        try:
            task, args, kwargs = self.execution.prepare(job)
        except Exception:  # the loop's start says why, and fails it
            task = None
        if task is None or task.kind != "io":
            self._tell(self.runs.start_claimed, job)
            return None
        outcome: Future[Any] = Future()
        if not self._tell(self.runs.adopt, job, task, (args, kwargs), outcome, started):
            return None
        return functools.partial(task.func, *args, **kwargs), outcome, job.queue

    def _may_claim(self, queue: str) -> bool:
        pump = self.pump
        return (
            not pump.stopping
            and pump.sole_queue == queue
            and pump.may_be_due(queue, "io", self.clock.now_ms())
            and time.monotonic() >= self._quiet_until
        )

    def _tell(self, callback: Callable[..., None], *args: Any) -> bool:
        """Run `callback` on the loop; False if the loop is gone (the daemon exits: the
        job's lease runs out and another daemon runs it)."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            return False
        return True


class Adoptions:
    """The loop's side, a base of the Daemon (daemon/supervisor.py), which owns the
    runs: a job a thread claimed and began becomes one of them."""

    active: dict[str, ClaimedJob]
    _job_tasks: dict[asyncio.Task[None], ClaimedJob]
    _cancelled: dict[tuple[str, int], float]
    executors: dict[str, Executor]
    execution: JobExecution
    conns: Connections
    settings: Settings
    pump: Pump
    clock: Clock

    if TYPE_CHECKING:  # the Daemon's

        def start_claimed(self, job: ClaimedJob) -> None: ...

        def _forget_task(self, task: asyncio.Task[None]) -> None: ...

    def let_threads_claim(self) -> ThreadClaims:
        """A freed io thread claims its own next job, on a blocking client of its own: a
        connection a thread at most, each opened and loaded at the start."""
        pool = self.executors["io"]
        assert isinstance(pool, ThreadExecutor)
        conns = self.conns
        claims = conns.redis_store.thread_claims(conns.redis_url, self.settings.redis_cluster)
        own = SelfClaims(claims, self.pump, self.execution, self, self.clock)
        pool.next_job = own.next_job
        pool.in_every_thread(claims.warm)
        return claims

    def adopt(
        self, job: ClaimedJob, task: Task, payload: tuple[list[Any], dict[str, Any]],
        outcome: Future[Any], started: float,
    ) -> None:  # fmt: skip
        """Take over a job an io thread claimed and began: its lease, cancel, timeout,
        lines and outcome are the loop's, as for a job the pump claimed."""
        pool = self.executors["io"]
        assert isinstance(pool, ThreadExecutor)
        if self._cancelled.pop((job.id, job.claim), None) is not None:
            log.info("job cancelled before it started", job_id=job.id, task=job.task,
                     attempt=job.attempt, state="cancelled")  # fmt: skip
            pool.drop(outcome)  # its thread runs on; the outcome is nobody's
            return
        log.debug("job claimed by its io thread", job_id=job.id, task=job.task, queue=job.queue)
        self.active[job.id] = job
        args, kwargs = payload
        work = pool.result(task, outcome, job.id)
        attempt = self.execution.adopt(job, task, work, args=args, kwargs=kwargs, started=started)
        run = asyncio.create_task(attempt)
        self._job_tasks[run] = job
        run.add_done_callback(self._forget_task)
