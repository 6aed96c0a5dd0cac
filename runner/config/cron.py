"""A cron schedule's settings ([cron.NAME]), read and checked with their key paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.config.reader import TableReader
from runner.config.values import one_of, positive_duration, queue_name, string
from runner.errors import UsageError
from runner.limits.caps import key_value


class _Task(Protocol):
    @property
    def queue(self) -> str: ...


@dataclass(frozen=True)
class CronSettings:
    name: str
    schedule: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    misfire: str = "once"
    misfire_grace: float = 3600.0
    overlap: str = "allow"
    queue: str | None = None  # the queue its jobs wait in; None: its task's

    def queue_of(self, tasks: Mapping[str, _Task]) -> str:
        """Its own queue, else its task's."""
        task = tasks.get(self.task)
        return self.queue or (task.queue if task is not None else "default")


_CRON_KEYS = {
    "schedule", "task", "args", "kwargs", "timezone", "misfire", "misfire_grace", "overlap",
    "queue",
}  # fmt: skip


def read_cron(
    read: TableReader, name: str, raw: Any, tasks: Mapping[str, Any]
) -> CronSettings | None:
    """The schedule's settings; None, with its problems noted, when any is wrong."""
    from runner.cron import MISFIRE_POLICIES, OVERLAP_POLICIES  # noqa: PLC0415  # croniter only when needed

    path = f"cron.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, _CRON_KEYS)
    for key in ("schedule", "task"):
        if key not in raw:
            read.problems.append(f"{path}.{key}: missing")
    timezone = read.get(raw, f"{path}.timezone", "UTC", _timezone)
    schedule = read.get(raw, f"{path}.schedule", "", _cron_expression)
    task = read.get(raw, f"{path}.task", "", string)
    if task and task not in tasks:
        read.problems.append(
            f"{path}.task: unknown task {task!r} (declared: {', '.join(sorted(tasks)) or 'none'})"
        )
    cron = CronSettings(
        name=name,
        schedule=schedule,
        task=task,
        args=tuple(read.get(raw, f"{path}.args", [], _array)),
        kwargs=read.get(raw, f"{path}.kwargs", {}, _table),
        timezone=timezone,
        misfire=read.get(raw, f"{path}.misfire", "once", one_of(*MISFIRE_POLICIES)),
        misfire_grace=read.get(raw, f"{path}.misfire_grace", 3600.0, positive_duration),
        overlap=read.get(raw, f"{path}.overlap", "allow", one_of(*OVERLAP_POLICIES)),
        queue=read.get(raw, f"{path}.queue", None, queue_name),
    )
    _check_keys(read, path, cron, tasks.get(task))
    return cron if len(read.problems) == before else None


def _check_keys(read: TableReader, path: str, cron: CronSettings, task: Any) -> None:
    """Every tick's job has the arguments its task's concurrency, unique, rate and fair
    keys name (a tick would be refused at enqueue, every time, otherwise)."""
    for setting in ("concurrency_key", "unique_key", "rate_key", "fair_key"):
        key = task.get(setting) if isinstance(task, Mapping) else None  # the task's table
        if not isinstance(key, str):
            continue
        try:
            key_value(key, cron.args, cron.kwargs, setting=setting)
        except UsageError as exc:
            read.problems.append(
                f"{path}: {exc} (task {cron.task!r}); give it in this schedule's args or kwargs"
            )
        except ValueError:
            continue  # a malformed key: the task's own check says so


def _timezone(value: Any) -> str:
    from runner.cron import zone  # noqa: PLC0415  # croniter only when needed

    text = string(value)
    zone(text)
    return text


def _cron_expression(value: Any) -> str:
    """Checked on its own, whatever the time zone, so both faults show in one pass."""
    from runner.cron import check_expression  # noqa: PLC0415  # croniter only when needed

    text = string(value)
    check_expression(text)
    return text


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"must be an array, got {value!r}")
    return value


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table, got {value!r}")
    return value
