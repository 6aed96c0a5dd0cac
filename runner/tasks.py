"""The allow-list of work: tasks declared in the config, resolved to callables once.

A job names a task; only declared tasks can run, so anyone who can write to
Redis can at most run registered tasks with bad arguments.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.config.settings import Settings, TaskSettings
from runner.errors import ConfigError, UnknownTask
from runner.workflows.join import JOIN_SETTINGS, JOIN_TASK, join


@dataclass(frozen=True)
class Task:
    settings: TaskSettings
    func: Callable[..., Any]

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind


def import_target(target: str) -> Callable[..., Any]:
    """The callable named by 'package.module:function'; ValueError says what is missing,
    or what the module raised while it was imported (a task module is user code)."""
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except (Exception, SystemExit) as exc:  # the module's own code failed (SyntaxError too)
        raised = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ValueError(f"importing module {module_name!r} raised {raised}") from None
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]  # checked callable above


def _check_kind(task: TaskSettings, func: Callable[..., Any]) -> str | None:
    is_coroutine = inspect.iscoroutinefunction(func)
    if task.kind == "async" and not is_coroutine:
        return "kind is 'async' but the target is a plain function; use kind = 'io' or 'cpu'"
    if task.kind != "async" and is_coroutine:
        return f"kind is {task.kind!r} but the target is 'async def'; use kind = 'async'"
    return None


def resolve_tasks(settings: Mapping[str, TaskSettings]) -> tuple[dict[str, Task], list[str]]:
    """Each task whose target imports and matches its kind, and a problem (with its key
    path) for every other one: all of them, not only the first."""
    problems: list[str] = []
    tasks: dict[str, Task] = {}
    for name, task in settings.items():
        try:
            func = import_target(task.target)
        except ValueError as exc:
            problems.append(f"tasks.{name}.target: {exc}")
            continue
        problem = _check_kind(task, func)
        if problem:
            problems.append(f"tasks.{name}.kind: {problem}")
            continue
        tasks[name] = Task(task, func)
    return tasks, problems


class TaskRegistry:
    """Declared tasks by name, each with its imported callable, and the largest result
    a task may return ([jobs] max_result): a reload builds both anew."""

    def __init__(self, tasks: Mapping[str, Task], max_result: int = 1_000_000) -> None:
        self._tasks = {JOIN_TASK: Task(JOIN_SETTINGS, join), **tasks}  # built in, and theirs
        self.max_result = max_result

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskRegistry:
        """Import every target now, so a typo fails check-config instead of the first job."""
        tasks, problems = resolve_tasks(settings.tasks)
        if problems:
            raise ConfigError(problems, settings.source)
        return cls(tasks, settings.max_result)

    def get(self, name: str) -> Task:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(name, self.names()) from None

    def names(self) -> list[str]:
        """The declared tasks (not the built-in ones)."""
        return sorted(name for name in self._tasks if name != JOIN_TASK)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks
