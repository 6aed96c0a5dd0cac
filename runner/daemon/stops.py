"""Stopping a run this daemon owns, its outcome unwanted: cancelled by request (the
cancel message, or a lease renewal that finds it cancelled), its lease lost to
another daemon, or still running when the daemon stops and its grace ran out (handed
back). A base of the Daemon (daemon/supervisor.py), which owns the runs.

Every run is named by its claim (ClaimedJob.claim), never by the job id alone: a job
cancelled as its body ends can be retried and claimed here again before the first
run's outcome is answered, and a stop meant for one run must never reach the next.
"""

from __future__ import annotations

import asyncio
import math
import time

import orjson

from runner.clock import Clock
from runner.daemon.finisher import Finisher
from runner.daemon.metrics import UNKNOWN_TASK, Metrics
from runner.jobs import ClaimedJob, Outcome
from runner.logs import get_logger

log = get_logger()


class RunStops:
    id: str
    clock: Clock
    finisher: Finisher
    metrics: Metrics | None
    active: dict[str, ClaimedJob]  # claimed here, outcome not yet in Redis
    _ended: set[tuple[str, int]]  # of those, the runs (job id, claim) whose outcome is sent
    _job_tasks: dict[asyncio.Task[None], ClaimedJob]
    # Runs (job id, claim) cancelled by request whose claim this daemon may not have
    # seen yet (the message can overtake the claim's reply) -> when (monotonic).
    _cancelled: dict[tuple[str, int], float]

    async def _wind_down(self, grace: float) -> None:
        """At shutdown, once nothing is claimed any more: running jobs get `grace` seconds
        to end (a held job starts meanwhile, as a task of its own, given the rest); those
        still running then are handed back, uncounted, and stopped."""
        deadline = time.monotonic() + grace
        late = set(self._job_tasks)
        while late and time.monotonic() < deadline:
            _, late = await asyncio.wait(late, timeout=deadline - time.monotonic())
            late |= {task for task in self._job_tasks if not task.done()}
        if late:
            self._give_back([self._job_tasks[task] for task in late if task in self._job_tasks])
            for task in late:
                task.cancel()
            await asyncio.wait(late)

    def _give_back(self, jobs: list[ClaimedJob]) -> None:
        """Jobs still running when the grace ran out go back to the schedule, due now,
        and the attempt does not count: stopping a daemon is not the job's failure."""
        now = self.clock.now_ms()
        for job in jobs:
            due = max(now, math.ceil(job.due_at_ms))  # a held job: not before its time
            self.finisher.submit(
                Outcome(
                    job.id, job.attempt, job.claim, "release", due_at_ms=due, give_back=True,
                    detail_json='{"reason":"daemon stopped before the job ended"}',
                    queue=job.queue,
                )
            )  # fmt: skip
            log.warning(
                "job handed back at shutdown", job_id=job.id, task=job.task,
                attempt=job.attempt, state="scheduled",
            )  # fmt: skip

    def _has_ended(self, job: ClaimedJob) -> bool:
        return (job.id, job.claim) in self._ended

    def _lost(self, job_id: str, claim: int, state: str) -> None:
        """Renewal found the lease of run `claim` gone. A run that ended meanwhile (its
        outcome on its way or recorded), or a job running here under a newer claim,
        was not lost: only that run, still going here, is. Its work stops: a
        cancelled job whose message was missed, or a job another daemon may run now."""
        job = self.active.get(job_id)
        if job is None or job.claim != claim or self._has_ended(job):
            return
        if state == "cancelled":
            if self.metrics is not None:  # its message was missed: counted here instead
                self.metrics.cancelled(job.task, job_id, claim)
            self._stop_work(job, "job cancelled by request")
            return
        log.warning(
            "lease lost; another daemon may run this job; its work here stops",
            job_id=job_id, task=job.task, attempt=job.attempt, state=state or None,
        )  # fmt: skip
        self._stop_work(job, None)

    def _cancel_requested(self, message: str) -> None:
        """A running job was cancelled by request (on any host). Its owner stops that
        run's work. A run whose outcome is already on its way is left alone (the
        finish script fences the outcome off); a run this daemon does not know yet
        (the claim's reply still on its way) is remembered a while, so it never
        starts. The claim names one run, so a remembered cancel can never stop a later
        run of the same job. Anyone may publish: what is not a message of cancel.lua
        is ignored (renewal still finds a cancelled job)."""
        try:
            job_id, owner, claim = orjson.loads(message)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return
        if owner != self.id or not isinstance(job_id, str) or not isinstance(claim, int):
            return
        job = self.active.get(job_id)
        if job is not None and job.claim == claim:
            if self.metrics is not None:
                self.metrics.cancelled(job.task, job_id, claim)
            if not self._has_ended(job):
                self._stop_work(job, "job cancelled by request")
            return
        if self.metrics is not None:
            self.metrics.cancelled(UNKNOWN_TASK, job_id, claim)
        if job is not None and job.claim > claim:
            return  # an older run, already over: the job runs here again since
        now = time.monotonic()
        self._cancelled = {k: t for k, t in self._cancelled.items() if now - t < 60}
        self._cancelled[(job_id, claim)] = now

    def _stop_work(self, job: ClaimedJob, message: str | None) -> None:
        """Stop a job's work, its outcome unwanted: an async job is cancelled, a cpu
        job's worker killed and replaced; an io job's thread runs on, its result
        dropped. Redis already holds the job's new state."""
        if self.active.get(job.id) is job:
            del self.active[job.id]
        for task, running in list(self._job_tasks.items()):
            if running is job:
                # Not task.cancel() now: a task cancelled before its first step never
                # runs the code that frees its executor slot. Its first step is already
                # scheduled (call_soon is first in, first out), so this comes after it.
                asyncio.get_running_loop().call_soon(task.cancel)
        if message:
            log.info(message, job_id=job.id, task=job.task, attempt=job.attempt,
                     state="cancelled")  # fmt: skip
