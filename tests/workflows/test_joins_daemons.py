"""Joins on three real daemons, SIGKILLed and restarted mid-run: chords of 10 children
and a callback that depends on them. From a ledger of every body's start and end, each
callback started after all of its children's bodies ended; from the history, each
callback was released (blocked -> scheduled) exactly once, and every job ended; a
callback ran more than once only when a kill took its first run's daemon.

`make test` runs 60 chords and one kill; RUNNER_CHORDS and RUNNER_CHORD_KILLS make it
the issue's 1,000 chords and 10 kills."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess
from tests.ledger import read_runs
from tests.limits.shared import all_succeeded
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

CHORDS = int(os.environ.get("RUNNER_CHORDS", "60"))
KILLS = int(os.environ.get("RUNNER_CHORD_KILLS", "1"))
CHILDREN = 10
KILL_EVERY_S = 1.0
SLOTS = 20  # async slots a daemon: the chords take seconds, so kills land mid-run
LEASE_S = 2
TASKS = {
    "tasks__child": {"target": "tests.tasks:noted_sleep", "kind": "async", "retries": 5},
    "tasks__callback": {"target": "tests.tasks:noted_sleep", "kind": "async", "retries": 5},
}


async def test_every_callback_is_released_once_after_all_its_children(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    config = daemon_config(daemon={"lease_ttl": f"{LEASE_S}s"}, pools={"async": SLOTS}, **TASKS)
    daemons = [spawn(config, {RUN_LEDGER_ENV: str(ledger)}) for _ in range(3)]
    for daemon in daemons:
        daemon.wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        jobs = []
        for c in range(CHORDS):
            kids = [f"c{c}-k{k}" for k in range(CHILDREN)]
            jobs += [client.new_job("child", [kid, 60 + 10 * k], job_id=kid)
                     for k, kid in enumerate(kids)]  # fmt: skip
            jobs.append(client.new_job("callback", [f"c{c}-cb", 5], job_id=f"c{c}-cb",
                                       depends_on=kids))  # fmt: skip
        await client.enqueue_many(jobs)
        for n in range(KILLS):
            await asyncio.sleep(KILL_EVERY_S)
            daemons[n % 3].signal(signal.SIGKILL)
            daemons[n % 3] = spawn(config, {RUN_LEDGER_ENV: str(ledger)})
        total = CHORDS * (CHILDREN + 1)
        await eventually(lambda: all_succeeded(pg, total), timeout=60 + total / 50,
                         what="every job succeeded")  # fmt: skip
    runs = read_runs(ledger)
    # Released from blocked once; or, enqueued after all its children had ended (a
    # later batch of the enqueue), made due at once: scheduled once either way.
    released = await pg.pool.fetch(
        "SELECT job_id, count(*) AS n, count(*) FILTER (WHERE from_state = 'blocked') AS joins"
        " FROM runner_job_events WHERE to_state = 'scheduled' AND job_id LIKE '%-cb'"
        " GROUP BY job_id"
    )
    early, twice = [], []
    for c in range(CHORDS):
        last_child_end = max(end for k in range(CHILDREN) for _, end in runs[f"c{c}-k{k}"])
        callback = runs[f"c{c}-cb"]
        if min(start for start, _ in callback) < last_child_end:
            early.append(c)
        if len(callback) > 1:
            twice.append(c)
    reaped = await pg.pool.fetchval(
        "SELECT count(*) FROM runner_job_events WHERE detail::text LIKE '%lease expired%'"
    )
    print(f"joins: chords={CHORDS} children={CHORDS * CHILDREN} kills={KILLS} "
          f"released_once={sum(1 for r in released if r['joins'] == 1)} "
          f"due_at_enqueue={sum(1 for r in released if r['joins'] == 0)} "
          f"callbacks_started_early={len(early)} callbacks_run_twice={len(twice)} "
          f"runs_reaped={reaped}")  # fmt: skip
    assert len(released) == CHORDS and all(r["n"] == 1 for r in released)
    assert early == []
    assert len(twice) <= reaped  # only a kill makes a body run again
