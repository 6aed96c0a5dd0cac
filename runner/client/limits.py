"""The limits as operators see them: per task with a cap, a rate or a fair key, what
runs against the cap, what waits on each limit, how many starts its rate allowed,
and the busiest key values; for `runner status`, /api/status, the dashboard and the
daemon's metrics.

The figures are live, from the groups the scripts saw busy lately (store: caps.py).
A rate's starts are a counter: the dashboard and Prometheus turn it into starts per
second between two reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from runner.config.settings import TaskSettings
from runner.jobs import rfc3339
from runner.store import LimitGroup

BUSIEST = 5  # key values shown per task


def limited_tasks(tasks: Mapping[str, TaskSettings]) -> dict[str, TaskSettings]:
    """The tasks with a cap, a rate or a fair key."""
    return {
        name: spec
        for name, spec in tasks.items()
        if spec.concurrency or spec.rate_interval_us or spec.fair_key
    }


def limits_document(
    tasks: Mapping[str, TaskSettings], groups: Iterable[LimitGroup]
) -> dict[str, dict[str, Any]]:
    """Per limited task: its settings, its figures summed over its groups, and its
    busiest key values."""
    by_task: dict[str, list[LimitGroup]] = defaultdict(list)
    for group in groups:
        by_task[group.task].append(group)
    return {
        name: _task(spec, by_task.get(name, []))
        for name, spec in sorted(limited_tasks(tasks).items())
    }


def _task(spec: TaskSettings, groups: list[LimitGroup]) -> dict[str, Any]:
    per_key = spec.concurrency if spec.concurrency_key else None
    keyed = sorted(
        (g for g in groups if g.key is not None),
        key=lambda g: (g.running + g.waiting, g.group),
        reverse=True,
    )
    return {
        "concurrency": spec.concurrency,
        "concurrency_key": spec.concurrency_key,
        "rate_per_s": None if spec.rate_interval_us is None else 1e6 / spec.rate_interval_us,
        "rate_key": spec.rate_key,
        "fair_key": spec.fair_key,
        **_figures(groups),
        "keys": [
            {"key": g.key, "concurrency": per_key, **_figures([g])}
            for g in keyed[:BUSIEST]
            if g.running or g.waiting
        ],
    }


def _figures(groups: list[LimitGroup]) -> dict[str, Any]:
    wakes = [g.next_start_ms for g in groups if g.next_start_ms is not None and g.waiting_rate]
    return {
        "running": sum(g.running for g in groups),
        "waiting": {
            "cap": sum(g.waiting_cap for g in groups),
            "rate": sum(g.waiting_rate for g in groups),
            "turn": sum(g.waiting_turn for g in groups),
        },
        "rate_starts": sum(g.rate_starts for g in groups),
        "next_start": rfc3339(min(wakes)) if wakes else None,
    }
