"""A job as the client shows it (from Redis, else from its history in PostgreSQL),
and a recorded transition in the shape `runner show --json` gives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.jobs import rfc3339
from runner.states import ENDED


@dataclass(frozen=True)
class JobInfo:
    id: str
    task: str
    state: str
    attempt: int
    due_at_ms: int | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    extra: dict[str, str] = field(default_factory=dict)
    seq: int = 0  # transitions so far; 0 when read from Postgres
    parked: bool = False  # waits in Postgres, due beyond the park horizon
    queue: str = "default"
    priority: int = 0

    @property
    def done(self) -> bool:
        return self.state in ENDED

    @property
    def due_at(self) -> str | None:
        """The due time in RFC 3339 UTC with milliseconds, as every output shows it."""
        return rfc3339(self.due_at_ms)


def public_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded transition as the client and `runner show --json` give it: every
    time in RFC 3339 UTC with milliseconds, the detail's due time included."""
    detail = row["detail"]
    if isinstance(detail, dict) and isinstance(detail.get("due_at"), int):
        detail = {**detail, "due_at": rfc3339(detail["due_at"])}
    return {
        "seq": row["seq"],
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "at": rfc3339(row["at_ms"]),
        "daemon": row["daemon"],
        "attempt": row["attempt"],
        "detail": detail,
    }
