"""Human sizes in the config ("512KB", "1MB", "2MiB", or a number of bytes) as bytes."""

from __future__ import annotations

import re

_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Bytes from an integer or a string with a unit; ValueError says what is accepted."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match and match.group(2).lower() in _UNITS:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ValueError(f"expected a size like '512KB', '1MB', '1MiB' or bytes, got {value!r}")
