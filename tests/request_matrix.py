"""What each operator's request does to a job in each state, written out by hand.

runner.states.TRANSITIONS is the table the Lua scripts are given, so a test that
took its expectations from it would pass whatever the table said. This matrix is
the specification instead: the control tests hold the real scripts (through the
client and the CLI) and the table itself to it. Each cell is the state the request
leaves the job in, REFUSED (the job keeps its state and the request says why), or
NOT_FOUND for an id no job has.
"""

from __future__ import annotations

REFUSED = "refused"
NOT_FOUND = "no such job"
MISSING = "missing"  # the row of an id no job has

REQUESTS = ("pause", "resume", "cancel", "retry", "delete", "update")

_ = REFUSED
# One row a state, one column a request, as REQUESTS lists them; the formatter is
# off so that the columns line up and the matrix reads as a table.
# fmt: off
MATRIX: dict[str, tuple[str, ...]] = {
    #             pause     resume       cancel       retry        delete     update
    "scheduled": ("paused", _,           "cancelled", _,           "deleted", "scheduled"),
    "retrying":  ("paused", _,           "cancelled", _,           "deleted", "retrying"),
    "running":   (_,        _,           "cancelled", _,           _,         _),
    "paused":    (_,        "scheduled", "cancelled", _,           "deleted", "paused"),
    "succeeded": (_,        _,           _,           _,           "deleted", _),
    "failed":    (_,        _,           _,           "scheduled", "deleted", _),
    "cancelled": (_,        _,           _,           "scheduled", "deleted", _),
    "blocked":   ("paused", _,           "cancelled", _,           "deleted", "blocked"),
    MISSING:     (NOT_FOUND,) * len(REQUESTS),
}
# fmt: on
STATES = tuple(state for state in MATRIX if state != MISSING)


def outcome(request: str, state: str) -> str:
    """The cell: what `request` does to a job in `state` (MISSING: an id no job has)."""
    return MATRIX[state][REQUESTS.index(request)]


def applies(request: str, state: str) -> bool:
    return outcome(request, state) not in (REFUSED, NOT_FOUND)


def states_it_applies_to(request: str) -> list[str]:
    """In the matrix's order of states."""
    return [state for state in STATES if applies(request, state)]
