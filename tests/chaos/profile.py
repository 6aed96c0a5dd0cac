"""How large a chaos run is: short ones inside `make test`, long ones in `make chaos`.

RUNNER_CHAOS=long picks the long defaults; any figure can be set on its own:
RUNNER_CHAOS_JOBS, RUNNER_CHAOS_SECONDS (the load is spread over them),
RUNNER_CHAOS_DAEMONS, RUNNER_CHAOS_KILLS ("10-15" or "12"), RUNNER_CHAOS_OUTAGES
and RUNNER_CHAOS_OUTAGE_S (how many outages of a server, or pauses of a daemon,
and how long each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

MODE_ENV = "RUNNER_CHAOS"


@dataclass(frozen=True)
class Profile:
    jobs: int
    seconds: float
    daemons: int = 3
    kills: tuple[int, int] = (0, 0)  # at least, at most
    outages: int = 0
    outage_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def timeout(self) -> float:
        """A bound for the whole test: the load, every outage, and room to drain."""
        return self.seconds + self.outages * (self.outage_s + 10) + 90


SHORT = {
    "steady": Profile(jobs=600, seconds=6),
    "kill": Profile(jobs=800, seconds=8, kills=(2, 3)),
    "postgres": Profile(jobs=600, seconds=8, outages=2, outage_s=2),
    "redis": Profile(jobs=600, seconds=7, outages=2, outage_s=1),
    "pause": Profile(jobs=600, seconds=7, outages=2, outage_s=3.5),
    "storm": Profile(jobs=1800, seconds=11),
    "malformed": Profile(jobs=300, seconds=5, daemons=2),
    "bad_tasks": Profile(jobs=200, seconds=3, daemons=2),
    "control": Profile(jobs=10_000, seconds=8, daemons=2),
    "sources": Profile(jobs=2_000, seconds=4, daemons=2, kills=(2, 2)),
    "webhooks": Profile(jobs=1000, seconds=5, daemons=2, kills=(1, 1), outages=1, outage_s=3),
    "failover": Profile(jobs=800, seconds=4, daemons=2),
}
LONG = {
    "steady": Profile(jobs=20_000, seconds=600),
    "kill": Profile(jobs=20_000, seconds=100, kills=(10, 15)),
    "postgres": Profile(jobs=40_000, seconds=200, outages=2, outage_s=60),
    "redis": Profile(jobs=10_000, seconds=100, outages=4, outage_s=5),
    "pause": Profile(jobs=10_000, seconds=100, outages=8, outage_s=6),
    "storm": Profile(jobs=45_000, seconds=300),
    "malformed": Profile(jobs=5_000, seconds=60),
    "bad_tasks": Profile(jobs=3_000, seconds=30),
    "control": Profile(jobs=40_000, seconds=100, daemons=2),
    "sources": Profile(jobs=100_000, seconds=40, daemons=2, kills=(5, 5)),
    "webhooks": Profile(jobs=20_000, seconds=60, daemons=2, kills=(1, 1), outages=1, outage_s=20),
    "failover": Profile(jobs=32_000, seconds=80, daemons=2),
}


def is_long() -> bool:
    mode = os.environ.get(MODE_ENV, "short")
    if mode not in ("short", "long"):
        raise ValueError(f"{MODE_ENV} must be short or long, got {mode!r}")
    return mode == "long"


def _kills(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def profile(scenario: str) -> Profile:
    """The scenario's figures for this run, environment overrides applied."""
    base = (LONG if is_long() else SHORT)[scenario]
    env = os.environ
    changes: dict[str, object] = {}
    for name, field, convert in (
        ("RUNNER_CHAOS_JOBS", "jobs", int),
        ("RUNNER_CHAOS_SECONDS", "seconds", float),
        ("RUNNER_CHAOS_DAEMONS", "daemons", int),
        ("RUNNER_CHAOS_OUTAGES", "outages", int),
        ("RUNNER_CHAOS_OUTAGE_S", "outage_s", float),
    ):
        if env.get(name):
            changes[field] = convert(env[name])
    if env.get("RUNNER_CHAOS_KILLS"):
        changes["kills"] = _kills(env["RUNNER_CHAOS_KILLS"])
    return replace(base, **changes)  # type: ignore[arg-type]  # fields and types paired above
