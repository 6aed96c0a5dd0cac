"""Concurrency caps on three real daemons, SIGKILLed and restarted mid-run: from a
ledger of every body's start and end, never more than `concurrency` bodies at once (5
for one task, 1 per key over 20 keys for another); a killed daemon's slots free once
its leases expire (their jobs run again elsewhere), and every job succeeds.

`make test` runs 1,000 jobs and one kill; RUNNER_CAPS_JOBS and RUNNER_CAPS_KILLS
make it longer (5,000 and 5 for the figures in the README)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess
from tests.limits.shared import all_succeeded
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

JOBS = int(os.environ.get("RUNNER_CAPS_JOBS", "1000"))
KILLS = int(os.environ.get("RUNNER_CAPS_KILLS", "1"))
CAPPED, KEYS = JOBS * 7 // 10, 20
KEYED = JOBS - CAPPED
KILL_EVERY_S = 0.6 if KILLS == 1 else 4.0
BODY_MS = 40.0
LEASE_S = 2.0
TASKS = {
    "tasks__capped": {
        "target": "tests.tasks:noted_sleep", "kind": "async", "concurrency": 5, "retries": 2,
    },
    "tasks__keyed": {
        "target": "tests.tasks:keyed_sleep", "kind": "async", "retries": 2,
        "concurrency": 1, "concurrency_key": "args.0",
    },
}  # fmt: skip

Run = tuple[float, float]  # a body's start and end, ms


def _ledger(path: Path) -> dict[str, list[Run]]:
    """The bodies that ran to their end, by concurrency group."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for line in path.read_text().splitlines():
        job_id, _, start, end = line.split()
        group = job_id.split("/")[0] if "/" in job_id else "capped"
        groups[group].append((float(start), float(end)))
    return groups


def _most_at_once(runs: list[Run]) -> int:
    """The most bodies running at one moment (an end before a start at the same ms)."""
    edges = sorted([(start, 1) for start, _ in runs] + [(end, -1) for _, end in runs])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _full_after(runs: list[Run], since_ms: float, width: int) -> bool:
    """Whether `width` bodies ran at once at some moment after `since_ms`."""
    return _most_at_once([(s, e) for s, e in runs if s >= since_ms]) >= width


async def test_caps_hold_on_three_daemons_through_a_kill(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    config = daemon_config(daemon={"lease_ttl": f"{LEASE_S}s"}, **TASKS)
    daemons = [spawn(config, {RUN_LEDGER_ENV: str(ledger)}) for _ in range(3)]
    for daemon in daemons:
        daemon.wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        jobs = [client.new_job("capped", [f"c{n}", BODY_MS]) for n in range(CAPPED)]
        jobs += [client.new_job("keyed", [f"k{n % KEYS}", f"j{n}", BODY_MS / 2])
                 for n in range(KEYED)]  # fmt: skip
        await client.enqueue_many(jobs)
        kills: list[float] = []
        for n in range(KILLS):
            await asyncio.sleep(KILL_EVERY_S)
            daemons[n % 3].signal(signal.SIGKILL)
            kills.append(time.time() * 1000)
            daemons[n % 3] = spawn(config, {RUN_LEDGER_ENV: str(ledger)})
        try:
            await eventually(lambda: all_succeeded(pg, JOBS), timeout=60 + JOBS / 50,
                             what="every job succeeded")  # fmt: skip
        except AssertionError as exc:
            states = await pg.pool.fetch(
                "SELECT task, state, count(*) AS n FROM runner_jobs GROUP BY task, state"
            )
            raise AssertionError(f"{exc}: {[tuple(r) for r in states]}") from None
    groups = _ledger(ledger)
    most = _most_at_once(groups.pop("capped"))
    per_key = max(_most_at_once(runs) for runs in groups.values())
    reaped = await pg.pool.fetchval(
        "SELECT count(*) FROM runner_job_events WHERE detail::text LIKE '%lease expired%'"
    )
    print(f"caps: jobs={JOBS} kills={len(kills)} most_at_once={most} (cap 5) "
          f"most_per_key={per_key} (cap 1) runs_reaped={reaped}")  # fmt: skip
    assert most <= 5 and per_key == 1 and len(groups) == KEYS
    capped = _ledger(ledger)["capped"]
    assert _full_after(capped, kills[-1] + LEASE_S * 1000 + 1000, 5), (
        "the killed daemon's slots were not free again after its leases expired"
    )
