"""Is a job's history a legal path? The one validator every chaos audit uses.

A history (runner_job_events of one job, in seq order) is legal when its seqs run
1, 2, 3... from (none -> scheduled), or (none -> blocked) for a job enqueued with
dependencies still going, each event starts from the state the previous
one ended in, each step is a transition of runner.states.TRANSITIONS (an update
keeps the state), and nothing follows a deletion. Continuity alone is not enough:
scheduled -> succeeded is continuous, and says a job succeeded that never ran.

The table is runner's own; what it allows for each operator's request is held to
a matrix written out by hand (tests/request_matrix.py), so the table and this
check cannot be wrong together.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from runner.states import TRANSITIONS, State

Event = Mapping[str, Any]  # seq, from_state, to_state at least


def _legal(before: Event, after: Event) -> bool:
    source, target = after["from_state"], after["to_state"]
    if source != before["to_state"]:
        return False
    return any(
        source in step.sources and target == (step.target or source)
        for step in TRANSITIONS.values()
    )


def illegal_step(history: Sequence[Event]) -> str | None:
    """Why the history is not a legal path through the table, or None."""
    if not history:
        return "no history"
    first = history[0]
    if (first["seq"], first["from_state"]) != (1, None) or first["to_state"] not in (
        State.SCHEDULED,
        State.BLOCKED,
    ):
        return f"starts with seq {first['seq']}: {first['from_state']} -> {first['to_state']}"
    for before, after in itertools.pairwise(history):
        if after["seq"] != before["seq"] + 1:
            return f"seq {before['seq']} is followed by seq {after['seq']}"
        if before["to_state"] == State.DELETED:
            return f"seq {after['seq']} follows a deletion"
        if not _legal(before, after):
            return (
                f"seq {after['seq']}: {after['from_state']} -> {after['to_state']} after "
                f"{before['from_state']} -> {before['to_state']}"
            )
    return None
