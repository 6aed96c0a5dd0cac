"""Human durations in the config ("250ms", "3s", "5m", "2h", "1d") as seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string with a unit; ValueError says what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '500ms', '3s', '5m', got {value!r}")
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int past what a float holds
            seconds = math.inf
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds is None:
        raise ValueError(f"expected a duration like '500ms', '3s', '5m', '2h', got {value!r}")
    if not math.isfinite(seconds):
        # TOML's inf and nan, or more digits than a float holds ("1e400" spelled out)
        raise ValueError(f"expected a finite duration like '500ms', '3s', '5m', got {value!r}")
    return seconds
