"""The figures each chaos scenario measured, printed at the end of the pytest run.

`make chaos` exists to produce them (jobs, kills, re-runs explained, time to
drain, peak memory, daemon exits); the short runs inside `make test` print
theirs too, one line per scenario.
"""

from __future__ import annotations

from typing import Any

FIGURES: list[tuple[str, dict[str, Any]]] = []


def record(scenario: str, **values: Any) -> None:
    FIGURES.append((scenario, values))


def lines() -> list[str]:
    return [
        f"{scenario}: " + ", ".join(f"{name}={value}" for name, value in values.items())
        for scenario, values in FIGURES
    ]
