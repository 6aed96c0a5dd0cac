"""A workflow cancelled while half of it runs, on three real daemons: `runner cancel
--workflow WF` stops the running jobs as a cancelled job is stopped (their bodies
never reach their end), and nothing that was waiting starts, neither the due jobs
of the running group nor the group after it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from runner import chain, group, step
from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, cli
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

SLOTS = 5  # async slots a daemon: 15 run at once
FIRST, AFTER = 40, 10
JOBS = FIRST + 1 + AFTER  # and the join between the groups (runner/workflows/join.py)
BODY_MS = 5000
TASKS = {"tasks__sleep": {"target": "tests.tasks:marked_sleep", "kind": "async"}}


def _marks(ledger: Path, kind: str) -> dict[str, float]:
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    return {job: float(at) for mark, job, at in (line.split() for line in lines) if mark == kind}


async def test_a_workflow_cancelled_while_half_of_it_runs(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    config = daemon_config(pools={"async": SLOTS}, **TASKS)
    for daemon in [spawn(config, {RUN_LEDGER_ENV: str(ledger)}) for _ in range(3)]:
        daemon.wait_ready()
    flow = chain(group(step("sleep", f"first{n}", BODY_MS) for n in range(FIRST)),
                 group(step("sleep", f"after{n}", 10) for n in range(AFTER)))  # fmt: skip
    async with await Client.connect(load_settings(config, env={})) as client:
        workflow = await client.enqueue_workflow(flow, workflow_id="wf-halfway")
        await eventually(lambda: len(_marks(ledger, "start")) == 3 * SLOTS, timeout=30,
                         what="every slot busy")  # fmt: skip
        asked = time.time() * 1000
        done = cli("cancel", "--workflow", "wf-halfway", config=config)
        assert done.returncode == 0, done.stderr
        assert f"cancel: workflow wf-halfway: {JOBS} jobs" in done.stdout
        states = await client.store.job_states(workflow.job_ids)
        assert set(states.values()) == {"cancelled"}

        async def recorded() -> bool:
            rows = await pg.workflow_jobs("wf-halfway", 1000)
            return len(rows) == JOBS and {r["state"] for r in rows} == {"cancelled"}

        await eventually(recorded, timeout=30, what="every job recorded cancelled")
        stopped = await pg.pool.fetchval(
            "SELECT count(*) FROM runner_job_events e JOIN runner_jobs j ON j.id = e.job_id"
            " WHERE j.workflow = 'wf-halfway' AND e.from_state = 'running'"
            " AND e.to_state = 'cancelled'"
        )
    starts = _marks(ledger, "start")
    # A body the cancel missed would end its 5 s sleep by then:
    await asyncio.sleep(max(0.0, (max(starts.values()) + BODY_MS + 500) / 1000 - time.time()))
    starts, ends = _marks(ledger, "start"), _marks(ledger, "end")
    assert len(starts) == 3 * SLOTS and all(job.startswith("first") for job in starts)
    assert max(starts.values()) < asked
    assert ends == {}  # every running body was stopped
    assert stopped == 3 * SLOTS
