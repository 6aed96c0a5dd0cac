"""`[notify.NAME]`: the webhook sinks, each POSTing matching transitions to one URL.

A sink names its endpoint (http or https only), the secret its requests are signed
with, the states (moved to) and optionally the tasks whose transitions it sends,
and how hard it tries: a timeout per request, a retry budget (`retry_for`) after
which a delivery is dead-lettered, the backoff between tries and how many requests
it keeps in flight. The secret never appears in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.config.reader import TableReader
from runner.config.values import positive_duration, positive_int, secret, url_of
from runner.redact import redact_url
from runner.states import TERMINAL, State

DEFAULT_STATES: frozenset[str] = frozenset(str(state) for state in TERMINAL)
STATE_NAMES: frozenset[str] = frozenset(str(state) for state in State)
NOTIFY_KEYS = {
    "url", "secret", "states", "tasks", "timeout", "retry_for", "concurrency", "backoff",
    "backoff_max",
}  # fmt: skip


@dataclass(frozen=True)
class NotifySettings:
    name: str
    url: str = field(repr=False)
    secret: str = field(repr=False)
    states: frozenset[str] = DEFAULT_STATES
    tasks: frozenset[str] = frozenset()  # empty: every task
    timeout: float = 10.0  # per request
    retry_for: float = 3600.0  # a delivery is retried this long, then dead-lettered
    concurrency: int = 8  # requests in flight
    backoff: float = 1.0  # the first retry waits up to this (full jitter), doubling
    backoff_max: float = 300.0  # ... up to this

    def __repr__(self) -> str:
        return (
            f"NotifySettings(name={self.name!r}, url={redact_url(self.url)!r}, "
            f"states={sorted(self.states)!r}, tasks={sorted(self.tasks)!r})"
        )

    def wants(self, to_state: str, task: str | None) -> bool:
        """Whether a transition to `to_state` of a job of `task` is sent."""
        return to_state in self.states and (not self.tasks or task in self.tasks)


def read_notify(
    read: TableReader, data: Mapping[str, Any], tasks: Mapping[str, Any]
) -> dict[str, NotifySettings]:
    """Every valid `[notify.NAME]` table; each problem recorded with its key path."""
    raw = read.table(data, "notify", set(data.get("notify", {}) or {}))
    sinks = {name: _sink(read, name, table, tasks) for name, table in raw.items()}
    return {name: sink for name, sink in sinks.items() if sink is not None}


def _sink(
    read: TableReader, name: str, raw: Any, tasks: Mapping[str, Any]
) -> NotifySettings | None:
    path = f"notify.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, NOTIFY_KEYS)
    for key in ("url", "secret"):
        if key not in raw:
            read.problems.append(f"{path}.{key}: missing")
    sink = NotifySettings(
        name=name,
        url=read.get(raw, f"{path}.url", "", url_of("http", "https")),
        secret=read.get(raw, f"{path}.secret", "", secret),
        states=read.get(raw, f"{path}.states", DEFAULT_STATES, _states),
        tasks=read.get(raw, f"{path}.tasks", frozenset(), _tasks(tasks)),
        timeout=read.get(raw, f"{path}.timeout", 10.0, positive_duration),
        retry_for=read.get(raw, f"{path}.retry_for", 3600.0, positive_duration),
        concurrency=read.get(raw, f"{path}.concurrency", 8, positive_int),
        backoff=read.get(raw, f"{path}.backoff", 1.0, positive_duration),
        backoff_max=read.get(raw, f"{path}.backoff_max", 300.0, positive_duration),
    )
    if sink.backoff_max < sink.backoff:
        read.problems.append(f"{path}.backoff_max: must be at least backoff ({sink.backoff}s)")
    return sink if len(read.problems) == before else None


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be an array of names, got {value!r}")
    if not value:
        raise ValueError("must name at least one (leave the key out for the default)")
    return value


def _states(value: Any) -> frozenset[str]:
    names = _names(value)
    unknown = sorted(set(names) - STATE_NAMES)
    if unknown:
        raise ValueError(
            f"unknown state(s) {', '.join(map(repr, unknown))} "
            f"(states: {', '.join(sorted(STATE_NAMES))})"
        )
    return frozenset(names)


def _tasks(declared: Mapping[str, Any]) -> Any:
    def check(value: Any) -> frozenset[str]:
        names = _names(value)
        unknown = sorted(set(names) - set(declared))
        if unknown:
            raise ValueError(
                f"unknown task(s) {', '.join(map(repr, unknown))} "
                f"(declared: {', '.join(sorted(declared)) or 'none'})"
            )
        return frozenset(names)

    return check
