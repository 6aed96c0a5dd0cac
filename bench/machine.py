"""How busy the machine's cores are, read from /proc/stat.

The throughput phase's daemon starts up (imports, connections) before it serves,
and nothing else runs meanwhile: the share of the cores busy over its whole life
understates how full they were while it served. A sampler reads the counters every
20 ms, so the share can be taken between two moments of the daemon's log.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType

SAMPLE_S = 0.02


def machine_ticks() -> tuple[int, int]:
    """The machine's CPU ticks so far: (busy, all), steal counted busy, as a core lent
    to another guest is not one this run could use."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


class BusySampler:
    """Samples (wall time, ticks) in a thread of its own while entered."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, tuple[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="busy-sampler", daemon=True)

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), machine_ticks()))
            if self._stop.wait(SAMPLE_S):
                self.samples.append((time.time(), machine_ticks()))
                return

    def busy_between(self, start: float, end: float) -> float | None:
        """The share of all cores busy from `start` to `end` (wall seconds), between the
        samples nearest them; None when they are the same sample."""
        if not self.samples:
            return None
        first = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        last = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        total = last[1] - first[1]
        return (last[0] - first[0]) / total if total > 0 else None
