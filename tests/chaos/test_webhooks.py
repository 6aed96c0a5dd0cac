"""Webhooks from real daemons through a hostile endpoint: it refuses 30% of requests
and is down (its port closed) for a while in the middle, and the daemon delivering
for the sink is SIGKILLed as the outage starts. Every terminal transition still
arrives at least once, each job's in seq order, a repeat recognisable by its event id
(same id, same body). Short: 1,000 jobs, down 3 s; RUNNER_CHAOS=long: 20,000 jobs,
down 20 s."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from runner.client.client import Client
from runner.states import TERMINAL
from runner.store import RedisStore, SinkStore
from tests.chaos import figures
from tests.chaos.profile import profile
from tests.daemon.process import DaemonProcess
from tests.notify.conftest import SECRET, eventually
from tests.notify.receiver import Receiver, in_seq_order

PROFILE = profile("webhooks")
STEP_S = 0.25  # jobs are enqueued in a batch every STEP_S


@pytest.mark.timeout(PROFILE.timeout)
async def test_every_terminal_transition_arrives_through_refusals_an_outage_and_a_kill(
    client: Client,
    store: RedisStore,
    database_url: str,
    daemon_config: Callable[..., Path],
) -> None:
    """At least once, in seq order per job, across daemons, with a takeover."""
    receiver = Receiver(SECRET, fail_share=0.3)
    await receiver.start()
    config = daemon_config(notify__app={
        "url": receiver.url, "secret": SECRET, "backoff": "50ms", "backoff_max": "500ms",
        "concurrency": 16,
    })  # fmt: skip
    daemons = [DaemonProcess(config) for _ in range(PROFILE.daemons)]
    try:
        for daemon in daemons:
            await asyncio.to_thread(daemon.wait_ready)
        sink = store.sink("app")
        await eventually(lambda: _held(sink))
        ids = await _load(client, sink, receiver, daemons)
        expected = await _terminal_events(database_url, ids)
        began = time.monotonic()
        await eventually(lambda: expected <= {r.event_id for r in receiver.accepted}, 120)
        caught_up = time.monotonic() - began
    finally:
        for daemon in daemons:
            daemon.stop()
        await receiver.stop()
    order = receiver.by_job()
    out_of_order = [order[i] for i in ids if not in_seq_order(order[i])]
    bodies: dict[str, dict[str, object]] = {}
    for received in receiver.accepted:
        assert received.signed and received.body["event_id"] == received.event_id
        assert bodies.setdefault(received.event_id, received.body) == received.body
    figures.record(
        "webhooks", jobs=len(ids), terminal_transitions=len(expected),
        accepted=len(receiver.accepted), duplicates=len(receiver.accepted) - len(bodies),
        refused=receiver.refused, out_of_order=len(out_of_order),
        caught_up_s=round(caught_up, 1),
    )  # fmt: skip
    assert not out_of_order, out_of_order[:5]


async def _load(
    client: Client, sink: SinkStore, receiver: Receiver, daemons: list[DaemonProcess]
) -> list[str]:
    """Enqueue the profile's jobs evenly over its seconds; in the middle, close the
    endpoint for `outage_s` and SIGKILL the daemon delivering for the sink."""
    steps = max(1, int(PROFILE.seconds / STEP_S))
    ids = [f"w{n}" for n in range(PROFILE.jobs)]
    size = -(-len(ids) // steps)
    start = time.monotonic()
    down_at = PROFILE.seconds / 2 - PROFILE.outage_s / 2
    down = False
    for n in range(steps):
        batch = ids[n * size : (n + 1) * size]
        if batch:
            await client.enqueue_many([client.new_job("echo", [i], job_id=i) for i in batch])
        elapsed = time.monotonic() - start
        if not down and elapsed >= down_at and receiver.accepted:
            await receiver.down()
            _kill(daemons, str(await _holder(sink)))
            down, up_at = True, time.monotonic() + PROFILE.outage_s
        if down and time.monotonic() >= up_at:
            await receiver.up()  # nothing if it is up already
        await asyncio.sleep(max(0.0, start + (n + 1) * STEP_S - time.monotonic()))
    if down and time.monotonic() < up_at:
        await asyncio.sleep(up_at - time.monotonic())
    await receiver.up()
    return ids


async def _holder(sink: SinkStore) -> str | None:
    holder = (await sink.summary())["holder"]
    return None if holder is None else str(holder)


async def _held(sink: SinkStore) -> bool:
    return await _holder(sink) is not None


def _kill(daemons: list[DaemonProcess], holder: str) -> None:
    """SIGKILL the daemon delivering for the sink (its id holds its pid)."""
    pid = int(holder.split(":")[1])
    (victim,) = [d for d in daemons if d.proc.pid == pid]
    os.kill(pid, signal.SIGKILL)
    victim.proc.wait(10)


async def _terminal_events(database_url: str, ids: list[str]) -> set[str]:
    """Every terminal transition of these jobs, once all have ended and are recorded."""
    terminal = sorted(str(state) for state in TERMINAL)
    conn = await asyncpg.connect(database_url, timeout=5)
    try:

        async def ended() -> bool:
            done = await conn.fetchval(
                "SELECT count(*) FROM runner_jobs WHERE id = ANY($1::text[]) AND state = ANY($2)",
                ids, terminal,
            )  # fmt: skip
            return int(done) == len(ids)

        await eventually(ended, 120)
        rows = await conn.fetch(
            "SELECT job_id, seq FROM runner_job_events"
            " WHERE job_id = ANY($1::text[]) AND to_state = ANY($2)",
            ids, terminal,
        )  # fmt: skip
    finally:
        await conn.close()
    return {f"{r['job_id']}:{r['seq']}" for r in rows}
