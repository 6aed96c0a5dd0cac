"""Peak memory of the daemons, sampled from /proc while the scenario runs.

A daemon's own peak is its VmHWM (the kernel's high-water mark of its resident
set); its cpu workers are separate processes, so the resident sets of the
whole process tree (daemon, forkserver, workers) are summed at each sample and
the largest sum kept. A daemon that is SIGKILLed takes its VmHWM with it,
hence the sampling rather than one reading at the end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _children() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc."""
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


class MemorySampler:
    """Samples, every `interval` s, the daemons `pids()` names, until stopped."""

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_daemon_kb = 0  # the largest VmHWM of one daemon process
        self.peak_tree_kb = 0  # the largest resident set of a daemon with its workers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-memory", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """A last sample, then stop; safe to call twice, or before start."""
        if self._stop.is_set():
            return
        self.sample()
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        tree = _children()
        for pid in self.pids():
            self.peak_daemon_kb = max(self.peak_daemon_kb, _status_kb(pid, "VmHWM"))
            total = sum(_status_kb(p, "VmRSS") for p in _descendants(pid, tree))
            self.peak_tree_kb = max(self.peak_tree_kb, total)
