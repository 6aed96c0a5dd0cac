"""A reload (SIGHUP), read and judged: the new config parsed and validated, what
changed and what waits for a restart. Applying it is the supervisor's: each service
takes its own part (`configure(settings)`), the pools are resized (pools.py). On
any problem the old settings stay and the daemon serves on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from runner.config.changes import NEEDS_RESTART, changed, load_new, restart_only
from runner.config.settings import Settings
from runner.errors import ConfigError
from runner.logs import get_logger
from runner.tasks import TaskRegistry

log = get_logger()


@dataclass(frozen=True)
class Reload:
    """A valid new config: the settings to run with (those that need a restart kept
    as they were), its tasks, and what changed."""

    settings: Settings
    registry: TaskRegistry
    changed: list[str]
    needs_restart: list[str]

    def log_applied(self) -> None:
        log.info(
            "config reloaded", changed=[n for n in self.changed if n not in self.needs_restart],
            needs_restart=self.needs_restart, config=self.settings.source,
        )  # fmt: skip


async def read_reload(current: Settings) -> Reload | str:
    """The config file of `current` read again: a Reload, or why it was rejected (each
    problem logged, with the key and the file)."""
    path = Path(current.source)
    try:
        new, registry = await asyncio.to_thread(load_new, path)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("reload rejected: config invalid", error=problem, config=str(path))
        return f"{len(exc.problems)} problem(s) in {path}"
    except Exception as exc:  # whatever loading raised, the old settings stay
        log.error("reload rejected", error=f"{type(exc).__name__}: {exc}", config=str(path))
        return f"{type(exc).__name__} while loading {path}"
    names = changed(current, new)
    kept = {name: getattr(current, name) for name in NEEDS_RESTART}
    settings = replace(new, **kept, source=current.source)
    return Reload(settings, registry, names, restart_only(names))
