"""`runner check-config` in one pass: every problem of a config file, all at once.

Loading settings stops at structural problems, and the daemon imports task
modules only once they pass. A check has no such order to keep: it reports
the structural problems, and also imports the target of every task whose own
table is fine, so an operator fixes the whole file in one go instead of
uncovering an import error only after fixing a typo elsewhere. Importing runs
the task modules' code: only the check and the daemon's own start do that.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from runner.config.settings import Settings, collect_settings, read_config_file
from runner.errors import ConfigError
from runner.tasks import resolve_tasks


def check_config(path: Path, env: Mapping[str, str]) -> tuple[Settings | None, list[str]]:
    """The settings and no problems, or None and every problem, each with its key path:
    a file that cannot be read or parsed, bad or unknown keys, cron schedules and time
    zones, then the task targets that do not import or do not match their kind."""
    try:
        data = read_config_file(path)
    except ConfigError as exc:
        return None, exc.problems
    settings, problems = collect_settings(data, str(path), env, folder=path.parent)
    _, task_problems = resolve_tasks(settings.tasks)
    problems += task_problems
    return (None if problems else settings), problems
