"""Reading typed values out of the config's TOML tables: every problem is recorded with
its key path (or the environment variable that set the value), so a config is judged
whole and an operator sees all that is wrong at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from runner.config.values import url_of

T = TypeVar("T")


class TableReader:
    """Reads typed values out of a TOML table, recording problems instead of raising."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def table(self, data: Mapping[str, Any], path: str, allowed: set[str]) -> Mapping[str, Any]:
        value = data.get(path.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.problems.append(f"{path}: must be a table, got {value!r}")
            return {}
        self.unknown_keys(value, path, allowed)
        return value

    def unknown_keys(self, table: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in sorted(set(table) - allowed):
            self.problems.append(
                f"{path}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})"
            )

    def get(self, table: Mapping[str, Any], path: str, default: T, check: Callable[[Any], T]) -> T:
        key = path.rsplit(".", 1)[-1]
        if key not in table:
            return default
        try:
            return check(table[key])
        except ValueError as exc:
            self.problems.append(f"{path}: {exc}")
            return default

    def overridden(
        self,
        env: Mapping[str, str],
        variable: str,
        table: Mapping[str, Any],
        path: str,
        check: Callable[[Any], T],
    ) -> T | None:
        """The value from the environment if set there, else from the file: checked alike,
        a problem named by the variable or the key it came from."""
        if not env.get(variable):
            return self.get(table, path, None, check)
        try:
            return check(env[variable])
        except ValueError as exc:
            self.problems.append(f"{variable}: {exc}")
            return None

    def url(
        self,
        env: Mapping[str, str],
        variable: str,
        table: Mapping[str, Any],
        path: str,
        schemes: tuple[str, ...],
    ) -> str | None:
        """The URL from the environment if set there, else from the file."""
        return self.overridden(env, variable, table, path, url_of(*schemes))
