"""Cron on real daemon processes: three daemons, one fire per tick; overlap = skip."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import statistics
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, cli

RUN_S = 15


async def test_three_daemons_fire_every_second_exactly_once(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """`* * * * * *` for 15 s on three daemons: every tick once, no gap, no duplicate, and
    each started before the next tick was due (its lag, from the claim's late_ms, under
    a second; finer bounds are make bench's)."""
    config = daemon_config(cron__every_second={"schedule": "* * * * * *", "task": "echo"})
    daemons = [spawn(config) for _ in range(3)]
    for daemon in daemons:
        daemon.wait_ready()
    await asyncio.sleep(RUN_S)  # the run's length: ticks fire meanwhile
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    assert [daemon.wait_exit() for daemon in daemons] == [0, 0, 0]
    rows = await pg.pool.fetch(
        "SELECT job_id, (detail->>'late_ms')::float8 AS late, daemon FROM runner_job_events"
        " WHERE to_state = 'running' AND job_id LIKE 'cron:every_second:%'"
    )
    runs = Counter(row["job_id"] for row in rows)
    assert set(runs.values()) == {1}, "a tick ran twice"
    ticks = sorted(datetime.fromisoformat(job_id.split(":", 2)[2]) for job_id in runs)
    assert len(ticks) >= RUN_S - 2
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(ticks))
    assert len({row["daemon"] for row in rows}) >= 2, "the work was not shared"
    lags = sorted(row["late"] for row in rows)
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(f"cron lag ms: p50={statistics.median(lags)} p99={p99} max={lags[-1]} n={len(lags)}")
    assert lags[0] >= 0, "a tick started before it was due"
    assert lags[-1] < 1000, "a tick started after the next one was due"
    shown = json.loads(cli("cron", "--json", config=config).stdout)
    assert shown[0]["name"] == "every_second" and len(shown[0]["next"]) == 3
    assert shown[0]["last"]["job_id"].startswith("cron:every_second:")


async def test_overlap_skip_does_not_pile_up_runs(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """A 2.5 s job on a 1 s schedule with overlap = skip: runs never overlap or queue up."""
    config = daemon_config(
        cron__slow={"schedule": "* * * * * *", "task": "sleep_io", "overlap": "skip", "args": [2.5]}
    )
    daemon = spawn(config)
    daemon.wait_ready()
    await asyncio.sleep(7)  # the run's length: seven 1 s ticks against a 2.5 s job
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    rows = await pg.pool.fetch(
        "SELECT job_id, to_state, at FROM runner_job_events"
        " WHERE job_id LIKE 'cron:slow:%' ORDER BY at"
    )
    starts = [r["at"] for r in rows if r["to_state"] == "running"]
    ends = [r["at"] for r in rows if r["to_state"] == "succeeded"]
    assert 2 <= len(starts) <= 3
    assert all(end <= start for end, start in zip(ends, starts[1:], strict=False))
    assert {r["to_state"] for r in rows} <= {"scheduled", "running", "succeeded"}
    assert daemon.events("cron tick skipped: the previous run is still going")
