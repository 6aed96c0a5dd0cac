"""The figures each chaos scenario measured, printed at the end of the pytest run.

`make chaos` exists to produce them (jobs, kills, re-runs explained, time to
drain, peak memory, daemon exits); the short runs inside `make test` print
theirs too, one line per scenario. The tests run in several worker processes
(pytest-xdist), so a test's lines travel with its report (see tests/conftest.py)
to the process that prints the summary.
"""

from __future__ import annotations

from typing import Any

FIGURES: list[tuple[str, dict[str, Any]]] = []


def record(scenario: str, **values: Any) -> None:
    FIGURES.append((scenario, values))


def take() -> list[str]:
    """The lines recorded since the last take, one per scenario."""
    taken = [
        f"{scenario}: " + ", ".join(f"{name}={value}" for name, value in values.items())
        for scenario, values in FIGURES
    ]
    FIGURES.clear()
    return taken
