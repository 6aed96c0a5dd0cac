"""A ledger of what really ran: one line per execution in the file an environment
variable names, written by the task bodies of daemons, threads and cpu workers."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path


def append_line(env_name: str, line: str) -> None:
    """Append `line` to the file named by `env_name` (nothing when unset); a write this
    short to an O_APPEND file is atomic, so every process can share the file."""
    path = os.environ.get(env_name)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def read_runs(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Each job's body runs that ended, as tests.tasks.noted_sleep notes them: lines of
    "<job id> <run> <start ms> <end ms>", read as (start ms, end ms) by job id."""
    runs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        job_id, _, start, end = line.split()
        runs[job_id].append((float(start), float(end)))
    return runs
