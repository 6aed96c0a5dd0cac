"""A running job cancelled just as its body ends and retried at once, many times over,
on one and on two real daemon processes, with a ledger of what really ran.

The edge this pins: a run's body has ended and its outcome is on its way to Redis
when the cancel lands; the retry puts the job back at once, and a daemon (maybe the
same one) claims it again at the same attempt number (a retry starts the attempts
anew). The first run's late outcome must be fenced off, the cancel must not stop the
second run, and the second run must run its body and record its own result: never
"succeeded" with the cancelled run's result, never a claim dropped and reaped when
its lease expires.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.client.client import Client
from runner.errors import RequestRefused
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

BODY_MS = 20.0
SPACING_S = 0.035  # between two jobs' due times
PAIRS = 120
ROUNDS = 4
EDGE_HITS = 5
# Where the cancel lands, ms after the body's planned end: a spread around it, reaching
# further after it for a loaded machine, where bodies end later than planned (they
# start at their due time to the microsecond: the daemon claims them ahead, its lead).
OFFSETS_MS = (-6.0, -4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
TASKS = {
    "tasks__noted_sleep": {"target": "tests.tasks:noted_sleep", "kind": "async", "retries": 2},
    "tasks__noted_sleep_io": {"target": "tests.tasks:noted_sleep_io", "kind": "io", "retries": 2},
}


@dataclass
class Run:
    """One body that ran to its end, as the ledger has it."""

    token: str
    start_ms: float
    end_ms: float


@dataclass
class Pair:
    job_id: str
    cancelled: bool  # the cancel came before the job ended (else it was refused)


async def _pair(client: Client, job_id: str, moment: float) -> Pair:
    await asyncio.sleep(max(0.0, moment - time.time()))
    try:
        await client.cancel(job_id)
    except RequestRefused:
        return Pair(job_id, cancelled=False)  # it ended first: no pair
    await client.retry(job_id)
    return Pair(job_id, cancelled=True)


def _ledger(path: Path) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = defaultdict(list)
    for line in path.read_text().splitlines() if path.exists() else []:
        job_id, token, start, end = line.split()
        runs[job_id].append(Run(token, float(start), float(end)))
    return runs


async def _history(pg: PgStore, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await pg.pool.fetch(
        "SELECT job_id, seq, from_state, to_state, daemon, detail::text AS detail,"
        " extract(epoch FROM at) * 1000 AS at_ms"
        " FROM runner_job_events WHERE job_id = ANY($1::text[]) ORDER BY job_id, seq",
        ids,
    )
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        events[row["job_id"]].append(dict(row))
    return events


async def _all_recorded_done(pg: PgStore, ids: list[str]) -> bool:
    done = await pg.pool.fetchval(
        "SELECT count(*) FROM runner_jobs WHERE id = ANY($1::text[])"
        " AND state IN ('succeeded', 'failed', 'cancelled')",
        ids,
    )
    return bool(done == len(ids))


def _check_job(job_id: str, events: list[dict[str, Any]], runs: list[Run], result: Any) -> str:
    """What is wrong with one cancelled-then-retried job, or "" if nothing."""
    if any("lease expired" in (e["detail"] or "") for e in events):
        return "a claim was dropped and its lease reaped"
    retried = [e for e in events if (e["from_state"], e["to_state"]) == ("cancelled", "scheduled")]
    if len(retried) != 1 or events[-1]["to_state"] != "succeeded":
        return f"not one retry then success: {[e['to_state'] for e in events]}"
    if not runs:
        return "recorded succeeded, but no body ran to its end"
    last = max(runs, key=lambda run: run.start_ms)
    if result != last.token:
        return f"recorded the result of run {result!r}, not of the last run {last.token!r}"
    if last.start_ms < float(retried[0]["at_ms"]) - 1:
        return "its recorded run started before the retry: the retried run never ran"
    return ""


@dataclass
class Round:
    cancelled: int = 0
    edge: int = 0  # cancels that landed after the body had ended
    problems: list[str] = field(default_factory=list)


async def _round(client: Client, pg: PgStore, ledger: Path, number: int) -> Round:
    """PAIRS jobs due SPACING_S apart, each cancelled around its body's end and
    retried; what became of them."""
    first_due = time.time() + 1.5
    ids, pairs = [], []
    for n in range(PAIRS):
        task = "noted_sleep" if n % 2 == 0 else "noted_sleep_io"
        due = first_due + n * SPACING_S
        job_id = f"race-{number}-{n}"
        at = datetime.fromtimestamp(due, UTC)
        await client.enqueue(task, [job_id, BODY_MS], at=at, job_id=job_id)
        moment = due + (BODY_MS + OFFSETS_MS[n % len(OFFSETS_MS)]) / 1000
        ids.append(job_id)
        pairs.append(asyncio.create_task(_pair(client, job_id, moment)))
    done = await asyncio.gather(*pairs)
    await eventually(lambda: _all_recorded_done(pg, ids), timeout=30, what="every job recorded")
    events, runs = await _history(pg, ids), _ledger(ledger)
    found = Round()
    for pair in done:
        if not pair.cancelled:
            continue
        found.cancelled += 1
        job = await client.get(pair.job_id)
        job_events = events[pair.job_id]
        cancel_at = next(e["at_ms"] for e in job_events if e["to_state"] == "cancelled")
        first = min(runs[pair.job_id], key=lambda run: run.start_ms, default=None)
        if first is not None and first.end_ms <= float(cancel_at) + 1:
            found.edge += 1
        problem = _check_job(pair.job_id, job_events, runs[pair.job_id], job.result)
        if problem:
            steps = [(e["seq"], e["to_state"], round(float(e["at_ms"]) % 100000, 1),
                      e["daemon"], e["detail"]) for e in job_events]  # fmt: skip
            ran = [(r.token, round(r.start_ms % 100000, 1), round(r.end_ms % 100000, 1))
                   for r in runs[pair.job_id]]  # fmt: skip
            found.problems.append(f"{pair.job_id}: {problem}; history {steps}; runs {ran}")
    return found


async def _race(
    client: Client, pg: PgStore, tmp_path: Path, start: Callable[[Path], list[DaemonProcess]]
) -> None:
    """Rounds until at least EDGE_HITS cancels landed after a body ended (at most
    ROUNDS: on a loaded machine bodies end later than planned and fewer land there)."""
    ledger = tmp_path / "ledger"
    daemons = start(ledger)
    for daemon in daemons:
        daemon.wait_ready()
    total = Round()
    for number in range(ROUNDS):
        found = await _round(client, pg, ledger, number)
        print(f"round {number}: {found.cancelled} of {PAIRS} cancelled then retried; "
              f"{found.edge} after the body ended")  # fmt: skip
        assert found.cancelled >= PAIRS // 3, (
            f"only {found.cancelled} cancels landed: the race was not run"
        )
        total.cancelled += found.cancelled
        total.edge += found.edge
        total.problems += found.problems
        if total.edge >= EDGE_HITS:
            break
    assert not total.problems, (
        f"{len(total.problems)} of {total.cancelled} retried jobs wrong:\n"
        + "\n".join(total.problems)
    )
    assert total.edge >= EDGE_HITS, (
        f"only {total.edge} cancels landed after a body ended: the edge was missed"
    )


@pytest.mark.parametrize("daemon_count", [1, 2])
async def test_a_cancel_as_the_body_ends_then_retry_runs_the_job_again(
    daemon_count: int,
    client: Client,
    pg: PgStore,
    tmp_path: Path,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Every job cancelled and retried runs its body again and records that run's own
    result, with no lease reaped, whichever daemon claims it the second time."""
    config = daemon_config(**TASKS)

    def start(ledger: Path) -> list[DaemonProcess]:
        env = {RUN_LEDGER_ENV: str(ledger)}
        return [spawn(config, env) for _ in range(daemon_count)]

    await _race(client, pg, tmp_path, start)
