"""The printed table and results.json: the figures, the targets, and whether they are met."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.peer import SETTINGS as ARQ_SETTINGS
from bench.stats import Lateness, Throughput

THROUGHPUT_RATIO_TARGET = 6.0  # runner drains at least 6x as many jobs/s as arq
BEST_PEER_RATIO_TARGET = 3.0  # and 3x as many as the fastest of Dramatiq and Huey
LATENESS_P99_TARGET_MS = 1.0  # and starts 99% of delayed jobs within 1 ms of the time asked for
RUNNER_SETTINGS = "its defaults"


@dataclass(frozen=True)
class Figures:
    jobs: int
    late_jobs: int
    spread_s: float
    runner_throughput: Throughput
    runner_lateness: Lateness
    runner_claim_lateness: Lateness
    arq_throughput: Throughput | None = None
    arq_lateness: Lateness | None = None
    # Dramatiq's and Huey's no-op throughput, and the settings each ran with.
    peer_throughput: dict[str, Throughput] = field(default_factory=dict)
    peer_settings: dict[str, str] = field(default_factory=dict)
    # Their lateness (bench/peer_lateness.py), and the settings each ran with there.
    peer_lateness: dict[str, Lateness] = field(default_factory=dict)
    peer_late_settings: dict[str, str] = field(default_factory=dict)

    def best_peer(self) -> tuple[str, Throughput] | None:
        if not self.peer_throughput:
            return None
        return max(self.peer_throughput.items(), key=lambda item: item[1].rate)

    def targets(self) -> dict[str, bool]:
        """Each target and whether it is met (the ratio only when arq was measured)."""
        met = {
            f"runner lateness p99 <= {LATENESS_P99_TARGET_MS:g} ms": (
                self.runner_lateness.p99_ms <= LATENESS_P99_TARGET_MS
            ),
            "runner starts no job before its exact due time": self.runner_lateness.early == 0,
        }
        if self.arq_throughput is not None:
            ratio = self.runner_throughput.rate / self.arq_throughput.rate
            met = {f"runner >= {THROUGHPUT_RATIO_TARGET:g}x arq throughput": (
                ratio >= THROUGHPUT_RATIO_TARGET
            ), **met}  # fmt: skip
        best = self.best_peer()
        if best is not None:
            ratio = self.runner_throughput.rate / best[1].rate
            name = f"runner >= {BEST_PEER_RATIO_TARGET:g}x the best peer's throughput ({best[0]})"
            met = {name: ratio >= BEST_PEER_RATIO_TARGET, **met}
        return met

    def as_json(self) -> dict[str, Any]:
        sides: dict[str, Any] = {
            "runner": {
                "throughput": self.runner_throughput.as_json(),
                "lateness": self.runner_lateness.as_json(),
                "claim_lateness": self.runner_claim_lateness.as_json(),
            }
        }
        if self.arq_throughput is not None and self.arq_lateness is not None:
            sides["arq"] = {
                "throughput": self.arq_throughput.as_json(),
                "lateness": self.arq_lateness.as_json(),
                "settings": ARQ_SETTINGS,
            }
            sides["ratio_runner_over_arq"] = {
                "throughput": round(self.runner_throughput.rate / self.arq_throughput.rate, 2),
                "lateness_p99": _ratio(self.runner_lateness.p99_ms, self.arq_lateness.p99_ms),
            }
        for name, rate in self.peer_throughput.items():
            sides[name] = {"throughput": rate.as_json(), "settings": self.peer_settings[name]}
        for name, late in self.peer_lateness.items():
            sides.setdefault(name, {}).update(
                lateness=late.as_json(), lateness_settings=self.peer_late_settings[name]
            )
        return {
            "jobs": self.jobs, "late_jobs": self.late_jobs, "spread_s": self.spread_s,
            **sides, "targets": self.targets(),
        }  # fmt: skip


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _rate_line(name: str, result: Throughput, note: str) -> str:
    return f"  {name:<8}{result.rate:>10,.0f} jobs/s   ({result.seconds:.2f} s{note})"


def _late_line(name: str, late: Lateness, note: str = "") -> str:
    return (
        f"  {name:<14}{late.p50_ms:>9.2f} ms{late.p99_ms:>9.2f} ms{late.max_ms:>9.2f} ms"
        f"{late.early:>8}" + (f"   {note}" if note else "")
    )


def late_lines(rows: Mapping[str, tuple[Lateness, str]]) -> list[str]:
    """The lateness table: a row a system, with the settings it ran with."""
    header = f"  {'':<14}{'p50':>12}{'p99':>12}{'max':>12}{'early':>8}   settings"
    return [header, *(_late_line(name, late, note) for name, (late, note) in rows.items())]


def render(f: Figures) -> str:
    lines = [
        f"throughput: {f.jobs:,} no-op jobs enqueued first, then each side's worker drains them",
        _rate_line("runner", f.runner_throughput, ", every transition in Postgres"),
    ]
    if f.arq_throughput is not None:
        ratio = f.runner_throughput.rate / f.arq_throughput.rate
        lines += [_rate_line("arq", f.arq_throughput, ""), f"  {'ratio':<8}{ratio:>9.1f}x"]
    for name, rate in f.peer_throughput.items():
        lines.append(_rate_line(name, rate, f"; {f.peer_settings[name]}"))
    best = f.best_peer()
    if best is not None:
        ratio = f.runner_throughput.rate / best[1].rate
        lines.append(f"  {'ratio':<8}{ratio:>9.1f}x  runner / {best[0]}, the best of these")
    rows = {"runner": (f.runner_lateness, RUNNER_SETTINGS)}
    if f.arq_lateness is not None:
        rows["arq"] = (f.arq_lateness, ARQ_SETTINGS)
    rows |= {name: (late, f.peer_late_settings[name]) for name, late in f.peer_lateness.items()}
    lines += [
        "",
        f"lateness: {f.late_jobs:,} jobs due at random over {f.spread_s:g} s (start - the"
        " exact due time asked for; early: started before it)",
        *late_lines(rows),
    ]
    if f.arq_lateness is not None:
        p99_ratio = _ratio(f.runner_lateness.p99_ms, f.arq_lateness.p99_ms)
        lines.append(f"  {'ratio p99':<14}{p99_ratio if p99_ratio is not None else '-':>9}x"
                     "  runner / arq")  # fmt: skip
    lines.append(
        _late_line("runner claim", f.runner_claim_lateness, "late_ms of the claim's event: 0 for"
                   " a job claimed inside the lead and held until its due time")
    )  # fmt: skip
    lines += ["", "targets:"]
    lines += [f"  {'met    ' if ok else 'MISSED '}{name}" for name, ok in f.targets().items()]
    return "\n".join(lines)
