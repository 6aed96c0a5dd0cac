"""Pausing a task, and every task, on two real daemon processes under a steady stream.

Two `python -m runner run` processes share one Redis, one Postgres and one key
prefix while the test enqueues short jobs of two tasks. What it pins: once
pause_task returns, no job of that task is claimed on either daemon (and none
starts more than 1 s later), while the other task's jobs keep starting; once
resume_task returns, the held jobs start again; maintenance mode (pause_all)
stops every claim while running jobs finish, and resume_all drains the rest.
Every job ends succeeded exactly once: one claim, one start, one success.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess

TASK_A, TASK_B = "task_a", "task_b"
TICK_S = 0.05  # one job of each task per tick: 20 jobs/s of each
SHORT_S = 0.02  # how long a stream job runs
LONG_S = 1.0  # the jobs running when maintenance starts
BOUND_S = 1.0  # how soon a pause must stop starts, and a resume restart them
PATH = [(None, "scheduled"), ("scheduled", "running"), ("running", "succeeded")]


async def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    """(wall time the call was made, wall time it returned). The daemons' times are
    whole ms rounded down, so the first is too: what happened later than the call was
    made is never earlier than that."""
    sent = math.floor(time.time() * 1000) / 1000
    await call()
    return sent, time.time()


@dataclass
class Stream:
    """Enqueues one short job of each task every tick until stopped."""

    client: Client
    ids: dict[str, list[str]] = field(default_factory=lambda: {TASK_A: [], TASK_B: []})
    enqueued: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> _timed
    stopping: bool = False

    async def run(self) -> None:
        while not self.stopping:
            jobs = [self.client.new_job(task, [SHORT_S]) for task in (TASK_A, TASK_B)]
            when = await _timed(functools.partial(self.client.enqueue_many, jobs))
            for job in jobs:
                self.ids[job.task].append(job.id)
                self.enqueued[job.id] = when
            await asyncio.sleep(TICK_S)

    def all_ids(self) -> list[str]:
        return [*self.ids[TASK_A], *self.ids[TASK_B]]

    def within(self, ids: Sequence[str], after: float, before: float) -> list[str]:
        """The jobs enqueued wholly after `after` and before `before` (wall times)."""
        return [i for i in ids if after < self.enqueued[i][0] and self.enqueued[i][1] < before]


def _starts(daemons: Sequence[DaemonProcess]) -> list[tuple[float, str, str, int]]:
    """Every "job started" line of every daemon: (ts, task, job id, daemon index)."""
    return [
        (datetime.fromisoformat(line["ts"]).timestamp(), line["task"], line["job_id"], n)
        for n, daemon in enumerate(daemons)
        for line in list(daemon.lines)
        if line.get("event") == "job started"
    ]


async def _claims(pg: PgStore, ids: Sequence[str]) -> list[tuple[float, str, str]]:
    """Every recorded claim of these jobs: (at, task, job id)."""
    rows = await pg.pool.fetch(
        "SELECT e.job_id, j.task, round(extract(epoch FROM e.at) * 1000)::int8 AS at_ms"
        " FROM runner_job_events e JOIN runner_jobs j ON j.id = e.job_id"
        " WHERE e.job_id = ANY($1::text[]) AND e.to_state = 'running'",
        list(ids),
    )
    return [(row["at_ms"] / 1000, row["task"], row["job_id"]) for row in rows]


async def _wait_succeeded(pg: PgStore, ids: Sequence[str], timeout: float = 20.0) -> None:
    """Until Postgres records every one of these jobs as succeeded."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = await pg.pool.fetchval(
            "SELECT count(*) FROM runner_jobs WHERE id = ANY($1::text[]) AND state = 'succeeded'",
            list(ids),
        )
        if done == len(ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(ids) - done} of {len(ids)} jobs not recorded succeeded")


async def _wait_running(client: Client, ids: Sequence[str]) -> None:
    """Until every one of these jobs is running (claimed and started)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = await client.store.job_states(ids)
        if all(states.get(job_id) == "running" for job_id in ids):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"not all running: {Counter((await client.store.job_states(ids)).values())}"
    )


async def _histories(pg: PgStore, ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    rows = await pg.pool.fetch(
        "SELECT job_id, seq, from_state, to_state FROM runner_job_events"
        " WHERE job_id = ANY($1::text[]) ORDER BY job_id, seq",
        list(ids),
    )
    return {
        job_id: [(r["seq"], r["from_state"], r["to_state"]) for r in group]
        for job_id, group in itertools.groupby(rows, key=lambda r: r["job_id"])
    }


def _between(items: Sequence[tuple[Any, ...]], low: float, high: float) -> list[tuple[Any, ...]]:
    return [item for item in items if low < item[0] < high]


async def test_pausing_a_task_and_everything_across_two_daemons(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    redis: Redis,
    pg: PgStore,
) -> None:
    """A steady stream of task A and task B jobs on two daemons. pause_task(A): no A job
    is claimed after it returned and none starts later than 1 s after, while B jobs keep
    starting; resume_task(A): the A jobs held meanwhile start within 1 s. pause_all while
    long jobs run: nothing is claimed after it returned, nothing starts on either daemon
    after 1 s, the running jobs finish; resume_all: everything drains. Every job has one
    claim, one "job started" line and one success, and both daemons exit 0 on SIGTERM."""
    task = {"target": "tests.tasks:sleep_async", "kind": "async"}
    config = daemon_config(tasks__task_a=task, tasks__task_b=task)
    daemons = [spawn(config) for _ in range(2)]
    for daemon in daemons:
        daemon.wait_ready()
    client = Client(load_settings(config, env={}), redis, pg)

    # A task paused and resumed under a steady stream.
    stream = Stream(client)
    feeding = asyncio.create_task(stream.run())
    await asyncio.sleep(2)  # the scenario's pace: the stream runs, then the pause lasts 3 s
    _, paused = await _timed(lambda: client.pause_task(TASK_A))
    await asyncio.sleep(3)
    resume_sent, resumed = await _timed(lambda: client.resume_task(TASK_A))
    await asyncio.sleep(2)
    stream.stopping = True
    await feeding
    await _wait_succeeded(pg, stream.all_ids())

    # Maintenance mode while long jobs run, the stream going on.
    long_jobs = [client.new_job(name, [LONG_S]) for name in (TASK_A, TASK_B) for _ in range(5)]
    long_ids = await client.enqueue_many(long_jobs)
    await _wait_running(client, long_ids)
    maintenance = Stream(client)
    feeding = asyncio.create_task(maintenance.run())
    _, all_paused = await _timed(client.pause_all)
    await asyncio.sleep(2.5)  # maintenance lasts a while: nothing new may start in it
    long_states = await client.store.job_states(long_ids)
    all_resume_sent, all_resumed = await _timed(client.resume_all)
    await asyncio.sleep(1)  # the stream goes on after the resume
    maintenance.stopping = True
    await feeding
    ids = [*stream.all_ids(), *long_ids, *maintenance.all_ids()]
    await _wait_succeeded(pg, ids)
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    assert [daemon.wait_exit() for daemon in daemons] == [0, 0]

    starts, claims = _starts(daemons), await _claims(pg, ids)
    a_starts = [s for s in starts if s[1] == TASK_A]
    a_claims = [c for c in claims if c[1] == TASK_A]
    # No A job is claimed once pause_task returned, none starts 1 s later; B goes on.
    while_paused = _between(a_claims, paused, resume_sent)
    assert not while_paused, (
        f"A jobs claimed while paused (from {paused:.3f} to {resume_sent:.3f}): {while_paused[:5]}"
    )
    late = _between(a_starts, paused + BOUND_S, resume_sent)
    assert not late, f"A jobs started over {BOUND_S}s after the pause: {late[:5]}"
    last_a = max((s[0] for s in a_starts if s[0] < resume_sent), default=paused) - paused
    b_starts = _between([s for s in starts if s[1] == TASK_B], paused + BOUND_S, resume_sent)
    assert len(b_starts) >= 20, f"B jobs stopped too: {len(b_starts)} started while A paused"
    # The A jobs enqueued while paused were held, and start within 1 s of the resume.
    held = stream.within(stream.ids[TASK_A], paused, resume_sent)
    assert len(held) >= 20, len(held)
    started_at = {job_id: ts for ts, _, job_id, _ in starts}
    held_lag = max(started_at[i] for i in held) - resumed
    assert held_lag < BOUND_S, f"held A jobs started up to {held_lag:.3f}s after the resume"
    assert min(started_at[i] for i in held) >= resume_sent

    # Maintenance: no claim once pause_all returned, no start 1 s later on either
    # daemon; the jobs running then finished during maintenance; the rest waited.
    in_maintenance = _between(claims, all_paused, all_resume_sent)
    assert not in_maintenance, (
        f"claimed in maintenance mode (from {all_paused:.3f} to {all_resume_sent:.3f}):"
        f" {in_maintenance[:5]}"
    )
    late = _between(starts, all_paused + BOUND_S, all_resume_sent)
    assert not late, f"jobs started over {BOUND_S}s into maintenance: {late[:5]}"
    assert set(long_states.values()) == {"succeeded"}, long_states
    waited = maintenance.within(maintenance.all_ids(), all_paused, all_resume_sent)
    assert len(waited) >= 40, len(waited)
    assert min(started_at[i] for i in waited) >= all_resume_sent
    maintenance_lag = max(started_at[i] for i in waited) - all_resumed
    assert maintenance_lag < BOUND_S, f"held jobs started {maintenance_lag:.3f}s after resume_all"

    # Exactly once: one claim, one start, one success for every job.
    histories = await _histories(pg, ids)
    wrong = {
        job_id: histories.get(job_id)
        for job_id in ids
        if histories.get(job_id) != [(n + 1, *step) for n, step in enumerate(PATH)]
    }
    assert not wrong, list(wrong.items())[:5]
    runs = Counter(job_id for _, _, job_id, _ in starts)
    assert set(runs) == set(ids) and set(runs.values()) == {1}, runs.most_common(3)
    per_daemon = Counter(n for *_, n in starts)
    assert len(per_daemon) == 2, f"one daemon did all the work: {per_daemon}"
    print(
        f"jobs={len(ids)} per daemon={dict(per_daemon)} last A start after pause={last_a:.3f}s"
        f" held A={len(held)}"
        f" B starts while A paused={len(b_starts)} held start lag={held_lag:.3f}s"
        f" held in maintenance={len(waited)} their start lag={maintenance_lag:.3f}s"
    )
