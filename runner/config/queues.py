"""`[queues.NAME]`: what holds for a whole queue, whatever task its jobs run.

    [queues.mail]
    max_queued = 50000    # refuse enqueues while this many of its jobs wait to start

A queue's `max_queued` counts every task's jobs waiting for their first start in
the queue, as a task's own `max_queued` counts that task's (limits/bounds.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.config.reader import TableReader
from runner.config.values import positive_int, queue_name


def read_queue_limits(read: TableReader, data: Mapping[str, Any]) -> dict[str, int]:
    """{queue: max_queued} for each queue with a bound; problems named by key path."""
    raw = read.table(data, "queues", set(data.get("queues", {})))
    limits: dict[str, int] = {}
    for name, table in raw.items():
        path = f"queues.{name}"
        try:
            queue_name(name)
        except ValueError as exc:
            read.problems.append(f"{path}: not a queue's name: {exc}")
            continue
        if not isinstance(table, dict):
            read.problems.append(f"{path}: must be a table, got {table!r}")
            continue
        read.unknown_keys(table, path, {"max_queued"})
        bound = read.get(table, f"{path}.max_queued", None, positive_int)
        if bound is not None:
            limits[name] = bound
    return limits
