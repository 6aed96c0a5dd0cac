"""SIGHUP reload: parse, validate, build new Settings, diff, apply; on error keep the old.

What can change in place: tasks, cron schedules, pool sizes (running jobs
finish on their old pool), log level, claim and recorder batching, leases,
the shutdown grace. What needs a restart (the servers, the key prefix, the
log destination) is logged as such and left as it is.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from runner.config.settings import Settings, load_settings
from runner.tasks import TaskRegistry

NEEDS_RESTART = (
    "redis_url",
    "database_url",
    "key_prefix",
    "redis_cluster",
    "wait_replicas",  # the stores are built with it at start
    "embedded_dir",
    "log_file",
    "log_format",
    "metrics_listen",  # the endpoint is bound at start
)
_IGNORED = ("source",)


def changed(old: Settings, new: Settings) -> list[str]:
    """Names of the settings that differ (tasks and cron compared entry by entry)."""
    names = []
    for f in fields(Settings):
        if f.name in _IGNORED:
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if f.name in ("tasks", "cron", "sources", "notify"):
            names += _mapping_changes(f.name, before, after)
        elif before != after:
            names.append(f.name)
    return names


def _mapping_changes(section: str, before: Any, after: Any) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [f"{section}.{key}" for key in keys if before.get(key) != after.get(key)]


def load_new(path: Path) -> tuple[Settings, TaskRegistry]:
    """The new settings and task registry; raises ConfigError with every problem found."""
    settings = load_settings(path)
    return settings, TaskRegistry.from_settings(settings)


def restart_only(names: list[str]) -> list[str]:
    return [name for name in names if name in NEEDS_RESTART]
