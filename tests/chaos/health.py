"""Did any daemon fail? Read from exit codes and log files, after the fact.

A daemon may only end because the scenario killed or stopped it; a stop must
end with exit code 0. A log line at level critical, or one of the lines runner
writes when its own code failed (a service that died, an unexpected error
caught by a service, a job task that crashed inside runner) is a failure even
if the process lived on, and so is a Python traceback on its output.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tests.chaos.daemons import BUG_EVENTS, Fleet, LogLine


@dataclass
class Health:
    runs: int = 0
    exits: list[str] = field(default_factory=list)  # ended without being asked
    bad_stops: list[str] = field(default_factory=list)  # asked to stop, did not exit 0
    bug_lines: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # processes an ended daemon left
    notes: list[str] = field(default_factory=list)  # tracebacks after a SIGKILL
    errors: Counter[str] = field(default_factory=Counter)  # error-level lines by event

    @property
    def failures(self) -> list[str]:
        return [*self.exits, *self.bad_stops, *self.bug_lines, *self.tracebacks, *self.orphans]

    def describe(self) -> str:
        shown = self.failures[:12]
        more = len(self.failures) - len(shown)
        return "\n\n".join(shown) + (f"\n\n... and {more} more" if more > 0 else "")


def _is_bug(line: LogLine) -> bool:
    event = str(line.get("event", ""))
    return line.get("level") == "critical" or any(bug in event for bug in BUG_EVENTS)


def _short(line: LogLine) -> str:
    keep = ("ts", "level", "event", "service", "error", "job_id", "traceback")
    return str({k: line[k] for k in keep if k in line})


def _orphans(fleet: Fleet, wait_s: float) -> list[str]:
    """Processes left in the group of a daemon that ended, once they had `wait_s` s to
    notice their parent is gone."""
    deadline = time.monotonic() + wait_s
    while True:
        left = {
            (daemon.name, run.log.name): pids
            for daemon, run in fleet.runs()
            if run.proc.poll() is not None and (pids := run.leftovers())
        }
        if not left or time.monotonic() > deadline:
            return [
                f"{name} ({log}) ended but left processes {pids}"
                for (name, log), pids in left.items()
            ]
        time.sleep(0.2)


def check_health(fleet: Fleet, allow_tracebacks: bool = False) -> Health:
    """Every run of every daemon: how it ended and what it logged.

    `allow_tracebacks`: a scenario whose tasks kill their own cpu worker sees the
    worker's dying words on the daemon's output; they are not the daemon's.
    """
    health = Health()
    for daemon, run in fleet.runs():
        health.runs += 1
        code = run.proc.poll()
        where = f"{daemon.name} (pid {run.pid}, {run.log.name})"
        if code is not None and not (run.killed or run.stopped):
            health.exits.append(f"{where} exited with {code} unasked; last lines:\n{run.tail()}")
        elif run.stopped and code != 0:
            health.bad_stops.append(
                f"{where} asked to stop ended with {code}; last lines:\n{run.tail()}"
            )
        lines, other = run.lines()
        for line in lines:
            if line.get("level") in ("error", "critical"):
                health.errors[str(line.get("event"))] += 1
            if _is_bug(line):
                health.bug_lines.append(f"{where}: {_short(line)}")
        if allow_tracebacks or not any("Traceback" in text for text in other):
            continue
        start = next(i for i, text in enumerate(other) if "Traceback" in text)
        printed = f"{where} printed:\n" + "\n".join(other[start : start + 30])
        (health.notes if run.killed else health.tracebacks).append(printed)
    health.orphans = _orphans(fleet, wait_s=5.0)
    return health
