"""One error hierarchy, so the CLI can map every failure to a named exit code.

Every message says what was wrong, where (config key, job id, argument) and,
where it helps, what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence


class RunnerError(Exception):
    """Base of every error that runner raises on purpose."""


class UsageError(RunnerError):
    """The caller asked for something malformed (CLI exit code 2)."""


class ConfigError(RunnerError):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class UnknownTask(UsageError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown task {name!r}: only tasks declared under [tasks] in the config can run "
            f"(declared: {listing})"
        )


class UnknownDependency(UsageError):
    """A job that depends on an id no job has, or on jobs that depend on it in turn (a
    cycle): nothing was enqueued (CLI exit code 2, API 400)."""


class PayloadError(UsageError):
    """Job arguments or a stored payload are not the JSON runner needs."""


class JobNotFound(RunnerError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} not found")


class TaskTimeout(RunnerError):
    """A job ran past its task's timeout."""


class UnserialisableResult(RunnerError):
    """A task returned something JSON cannot represent."""


class StoreError(RunnerError):
    """Redis or PostgreSQL refused a request. Raised only by runner.store, which
    translates its drivers' exceptions, so the engine never names a driver."""

    def __init__(self, message: str, server: str = "") -> None:
        self.server = server
        super().__init__(message)


class StoreUnavailable(StoreError):
    """The server cannot serve right now: connection lost or refused, a timeout, a
    restart in progress, a read-only replica, out of memory, a deadlock or a
    serialization failure. Retrying after a pause is the answer."""


class NotReplicated(StoreUnavailable):
    """An enqueue the Redis primary made, but that fewer replicas than `[redis]
    wait_replicas` confirmed in time: the jobs exist, yet a failover now could lose
    them. Enqueue them again under the same ids to be sure (idempotent)."""

    def __init__(self, message: str, job_ids: list[str]) -> None:
        self.job_ids = job_ids
        super().__init__(message, "redis")


class StoreDataError(StoreError):
    """PostgreSQL rejected the data of a write (a value that is not what runner's
    scripts write): the datum must be isolated, retrying the same batch cannot help."""


class RequestRefused(RunnerError):
    """An operator's request that the job's state does not allow (CLI exit code 1)."""

    def __init__(self, job_id: str, action: str, state: str, message: str) -> None:
        self.job_id = job_id
        self.action = action
        self.state = state
        super().__init__(message)


class QueueFull(RunnerError):
    """An enqueue refused because the job's task has `max_queued` jobs waiting (CLI exit
    code 1, API 429): nothing was written; retry later, or enqueue with a wait."""

    def __init__(self, job_id: str, message: str) -> None:
        self.job_id = job_id
        super().__init__(message)


class JobDeleted(RequestRefused):
    """A request on a job that was deleted: nothing applies to it any more (the API's
    410 Gone; its history stays)."""


class JobFailed(RunnerError):
    """An awaited job ended without succeeding: failed, cancelled or deleted. Carries
    the state it ended in and its error, for the caller to decide what to do."""

    def __init__(self, job_id: str, state: str, error: str | None) -> None:
        self.job_id = job_id
        self.state = state
        self.error = error
        reason = f": {error}" if error else ""
        super().__init__(f"job {job_id!r} ended {state}{reason}")


class ResultTimeout(RunnerError, TimeoutError):
    """An awaited job had not ended when the timeout ran out; it goes on, in `state`."""

    def __init__(self, job_id: str, state: str, timeout: float) -> None:
        self.job_id = job_id
        self.state = state
        self.timeout = timeout
        super().__init__(f"job {job_id!r} is still {state} after {timeout:g}s")
