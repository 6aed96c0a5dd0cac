"""An operator's requests on jobs: pause, resume, cancel, retry, delete, update, and
pausing a whole task or every task (maintenance mode).

Each request on a job is one Lua script (lua/<action>.lua) that checks the job's
state against the table in states.py and writes the change with its event, so a
request either applies whole or is refused with the state that refused it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from runner.client.input import checked, due_at_ms, encode_payload
from runner.errors import JobDeleted, JobNotFound, RequestRefused, StoreError, UsageError
from runner.jobs import check_priority
from runner.states import TRANSITIONS, State

if TYPE_CHECKING:
    from runner.clock import Clock
    from runner.config.settings import Settings
    from runner.store import PgStore


class ClientParts(Protocol):
    """What the requests use of a client: its settings, clock and Postgres."""

    settings: Settings
    clock: Clock

    async def history_store(self) -> PgStore | None: ...


@dataclass(frozen=True)
class RequestResult:
    """What became of a request on one job: applied (`ok`, with the job's state now),
    or not, with the state that refused it and a sentence saying why."""

    job_id: str
    action: str
    ok: bool
    state: str | None
    message: str

    def raise_unless_ok(self) -> str:
        if self.ok:
            return self.state or ""
        if self.state is None:
            raise JobNotFound(self.job_id)
        refused = JobDeleted if self.state == State.DELETED else RequestRefused
        raise refused(self.job_id, self.action, self.state, self.message)


_HINTS = {
    ("delete", "running"): "cancel it first (runner cancel ID), then delete it",
    ("retry", "running"): "wait for it to end, or cancel it first",
    ("update", "running"): "a running job cannot change; cancel it and enqueue anew",
}


def _refusal(job_id: str, action: str, state: str) -> str:
    if state == State.DELETED:
        return f"cannot {action} job {job_id}: it was deleted"
    sources = ", ".join(sorted(TRANSITIONS[action].sources))
    hint = _HINTS.get((action, state), f"{action} applies to jobs that are {sources}")
    return f"cannot {action} job {job_id}: it is {state}; {hint}"


async def result_of(client: ClientParts, job_id: str, action: str, reply: str) -> RequestResult:
    """The reply of a request script as a RequestResult with a message for people."""
    kind, _, rest = reply.partition(":")
    if kind == "ok":
        return RequestResult(job_id, action, True, rest, f"{action}: job {job_id} is {rest}")
    if kind == "refused":
        return RequestResult(job_id, action, False, rest, _refusal(job_id, action, rest))
    if kind == "malformed":
        message = (f"cannot {action} job {job_id}: its record in Redis is malformed ({rest}); "
                   "a daemon sets it aside when it is due")  # fmt: skip
        return RequestResult(job_id, action, False, "malformed", message)
    recorded = await _recorded_state(client, job_id)
    if recorded is None:
        return RequestResult(job_id, action, False, None, f"no such job {job_id!r}")
    return RequestResult(job_id, action, False, recorded, _refusal(job_id, action, recorded))


async def _recorded_state(client: ClientParts, job_id: str) -> str | None:
    try:
        pg = await client.history_store()
        row = await pg.get_job(job_id) if pg else None
    except StoreError:
        return None  # Postgres down: Redis's word stands
    return None if row is None else str(row["state"])


def update_changes(
    client: ClientParts,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    delay: float | timedelta | None = None,
    at: datetime | None = None,
    retries: int | None = None,
    timeout: float | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The changes of an update, checked as an enqueue checks them (UsageError naming
    the argument); at least one is needed."""
    changes: dict[str, Any] = {}
    if args is not None:
        changes["args"] = encode_payload(client.settings, "args", args, list)
    if kwargs is not None:
        changes["kwargs"] = encode_payload(client.settings, "kwargs", kwargs, dict)
    if delay is not None or at is not None:
        changes["due_at"] = due_at_ms(client.clock, delay, at)
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries < 10**6:
            raise UsageError(f"retries must be a whole number from 0, got {retries!r}")
        changes["max_attempts"] = retries + 1
    if timeout is not None:
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (0 < timeout < math.inf)
        ):
            raise UsageError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        changes["timeout"] = repr(float(timeout))
    if priority is not None:
        changes["priority"] = checked("priority", priority, check_priority)
    if not changes:
        raise UsageError(
            "nothing to update: give args, kwargs, a due time, retries, timeout or priority"
        )
    return changes
