"""Human durations in the config ("250ms", "3s", "5m", "2h", "1d") as seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string with a unit; ValueError says what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '500ms', '3s', '5m', got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration like '500ms', '3s', '5m', '2h', got {value!r}")
