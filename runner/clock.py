"""Time as a parameter: services read the clock through this, tests inject their own."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch, as precise as the clock allows."""
        ...

    def now_ms(self) -> int:
        """Whole milliseconds since the epoch (the unit of the due-time sorted set)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


SYSTEM_CLOCK = SystemClock()
