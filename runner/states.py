"""The job state machine: one table, shared by Python and (through ARGV) the Lua scripts.

Each action names the states it may start from and the state it leads to. The
Lua scripts never hard-code a state name: they receive the allowed "from"
states and the target state from this table, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    BLOCKED = "blocked"  # waits for the jobs it depends on to end (runner/workflows)


TERMINAL: frozenset[State] = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
# Over: a terminal state, or deleted (what Redis keeps of a deleted job until
# Postgres recorded it, see lua/delete.lua). Redis forgets a job in one of these.
ENDED: frozenset[State] = frozenset({*TERMINAL, State.DELETED})
WAITING: frozenset[State] = frozenset({State.SCHEDULED, State.RETRYING})
GOING: frozenset[State] = frozenset({*WAITING, State.RUNNING, State.PAUSED, State.BLOCKED})


# The states a job's id can be retired in (see runner/daemon/retired_ids.py): finished and
# forgotten by Redis, deleted, or parked in PostgreSQL. Their order is their code in
# the retired ids' scores (lua/lib.lua): append, never reorder.
RETIRED_STATES: tuple[State, ...] = (
    State.SUCCEEDED, State.FAILED, State.CANCELLED, State.DELETED, State.SCHEDULED,
)  # fmt: skip
RETIRED_ARGV = '["' + '","'.join(RETIRED_STATES) + '"]'


def states_argv(states: frozenset[State]) -> str:
    """A set of states as one ARGV value for Lua's string.find: ",a,b,"."""
    return "," + ",".join(sorted(states)) + ","


@dataclass(frozen=True)
class Transition:
    """An action, the states it may start from, and the state it leads to (None: the
    job stays in its state, as for an update)."""

    action: str
    sources: frozenset[State]
    target: State | None

    @property
    def sources_argv(self) -> str:
        """The allowed source states as one comma-separated ARGV value for Lua."""
        return states_argv(self.sources)


def _t(action: str, sources: set[State], target: State | None) -> Transition:
    return Transition(action, frozenset(sources), target)


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("claim", {State.SCHEDULED, State.RETRYING}, State.RUNNING),
        _t("succeed", {State.RUNNING}, State.SUCCEEDED),
        _t("fail", {State.RUNNING}, State.FAILED),
        _t("retry_later", {State.RUNNING}, State.RETRYING),
        _t("lease_expired_retry", {State.RUNNING}, State.RETRYING),
        _t("lease_expired_fail", {State.RUNNING}, State.FAILED),
        _t("release", {State.RUNNING}, State.SCHEDULED),
        # A blocked job once the jobs it depends on ended (lua/lib.lua, dependencies):
        # due, or ended by its on_failure policy when one of them did not succeed.
        _t("unblock", {State.BLOCKED}, State.SCHEDULED),
        # A paused job that still waited for some is ended so too, or, released, stays
        # paused until resumed.
        _t("dependency_cancel", {State.BLOCKED, State.PAUSED}, State.CANCELLED),
        _t("dependency_fail", {State.BLOCKED, State.PAUSED}, State.FAILED),
        # An operator's requests (one Lua script each, lua/<action>.lua):
        _t("pause", {State.SCHEDULED, State.RETRYING, State.BLOCKED}, State.PAUSED),
        _t("resume", {State.PAUSED}, State.SCHEDULED),
        # A paused job whose dependencies have not all ended goes back to waiting for
        # them; a failed or cancelled job retried with its workflow waits for the jobs
        # it depends on that are retried with it (lua/resume.lua, lua/retry.lua).
        _t("resume_blocked", {State.PAUSED}, State.BLOCKED),
        _t("retry_blocked", {State.FAILED, State.CANCELLED}, State.BLOCKED),
        _t("cancel", {*WAITING, State.PAUSED, State.RUNNING, State.BLOCKED}, State.CANCELLED),
        _t("retry", {State.FAILED, State.CANCELLED}, State.SCHEDULED),
        _t("delete", {*TERMINAL, *WAITING, State.PAUSED, State.BLOCKED}, State.DELETED),
        _t("update", {*WAITING, State.PAUSED, State.BLOCKED}, None),
    )
}


# What the scripts that end a job need to release the jobs that depend on it (lua/lib.lua).
DEPENDENCY_ARGV = json.dumps(
    {
        "blocked": State.BLOCKED, "scheduled": State.SCHEDULED, "succeeded": State.SUCCEEDED,
        "paused": State.PAUSED,
        "failed": State.FAILED, "cancelled": State.CANCELLED, "ended": states_argv(ENDED),
    },
    separators=(",", ":"),
)  # fmt: skip

REQUESTS: tuple[str, ...] = ("pause", "resume", "cancel", "retry", "delete", "update")


def transition(action: str) -> Transition:
    return TRANSITIONS[action]
