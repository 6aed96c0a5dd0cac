"""The names of a job hash's fields in Redis: one letter each.

Every hash stores its field names, and a waiting job's hash is most of what the
job costs in Redis memory, so the names are short; code names them in full and
turns them here (the Lua scripts: FIELD in lua/lib.lua, the same table, which
a test compares with this one). A field not in the table (a cron job's `cron`
and `tick`) is stored under its own name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

FIELD = {
    "state": "s", "seq": "q", "attempt": "n", "max_attempts": "m", "kind": "k", "task": "t",
    "args": "a", "kwargs": "w", "due_at": "d", "created_at": "c", "updated_at": "u",
    "started_at": "b", "owner": "o", "result": "r", "error": "e", "timeout": "x",
    "chosen_id": "i",
    "priority": "p", "cap": "l", "cap_group": "g", "unique": "v", "unique_key": "y", "rate": "j",
    "rate_group": "h", "bound": "z", "fair_group": "f", "queue_bound": "Q",
}  # fmt: skip
_NAMED = {short: name for name, short in FIELD.items()}


def stored(name: str) -> str:
    """The name a field is stored under."""
    return FIELD.get(name, name)


def named(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A job hash as read from Redis, its fields under their full names."""
    return {_NAMED.get(key, key): value for key, value in raw.items()}


def int_or_none(value: str | bytes | None) -> int | None:
    """An integer field; None when missing or not a number (the hash is untrusted)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def float_or_none(value: str | bytes | None) -> float | None:
    """A time in ms with its microseconds (a score); None when missing or not finite."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
