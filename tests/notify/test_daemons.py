"""Webhooks from real daemons: two of them share a sink while the endpoint refuses 30%
of requests and is down for 3 s, and the delivering daemon is SIGKILLed: every
terminal transition still arrives, each job's in seq order, a repeat recognisable by
its event id."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.states import TERMINAL
from runner.store import PgStore, RedisStore, SinkStore
from tests.daemon.process import DaemonProcess
from tests.notify.conftest import SECRET, eventually
from tests.notify.receiver import Receiver, in_seq_order

JOBS = 1000
BATCH = 100


async def test_every_terminal_transition_arrives_through_refusals_an_outage_and_a_kill(
    client: Client,
    store: RedisStore,
    pg: PgStore,
    receiver: Receiver,
    daemon_config: Callable[..., Path],
) -> None:
    """At least once, in seq order per job, across daemons, with a takeover."""
    receiver.fail_share = 0.3
    config = daemon_config(notify__app={
        "url": receiver.url, "secret": SECRET, "backoff": "50ms", "backoff_max": "500ms",
        "concurrency": 16,
    })  # fmt: skip
    daemons = [DaemonProcess(config), DaemonProcess(config)]
    try:
        for daemon in daemons:
            await asyncio.to_thread(daemon.wait_ready)
        sink = store.sink("app")
        await eventually(lambda: _held(sink))
        ids = [f"w{n}" for n in range(JOBS)]
        for n, start in enumerate(range(0, JOBS, BATCH)):
            await client.enqueue_many([client.new_job("echo", [i], job_id=i)
                                       for i in ids[start : start + BATCH]])  # fmt: skip
            if n == 3:
                await receiver.down()
                _kill(daemons, str(await _holder(sink)))
            if n == 6:
                await receiver.up()
            await asyncio.sleep(0.5)
        expected = await _terminal_events(pg, ids)
        began = time.monotonic()
        await eventually(lambda: expected <= {r.event_id for r in receiver.accepted}, 60)
        print(f"webhooks: {len(expected)} terminal transitions, {len(receiver.accepted)} "
              f"accepted, {receiver.refused} refused, caught up {time.monotonic() - began:.1f}s "
              "after the last enqueue")  # fmt: skip
    finally:
        for daemon in daemons:
            daemon.stop()
    order = receiver.by_job()
    assert all(in_seq_order(order[i]) for i in ids), [
        order[i] for i in ids if not in_seq_order(order[i])
    ][:5]
    bodies: dict[str, dict[str, object]] = {}
    for received in receiver.accepted:
        assert received.signed and received.body["event_id"] == received.event_id
        assert bodies.setdefault(received.event_id, received.body) == received.body


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


async def _terminal_events(pg: PgStore, ids: list[str]) -> set[str]:
    """Every terminal transition of these jobs, once all have ended and are recorded."""
    terminal = {str(state) for state in TERMINAL}

    async def ended() -> bool:
        states = await pg.recorded_states(ids)
        return len(states) == len(ids) and set(states.values()) <= terminal

    await eventually(ended, 60)
    found = set()
    for job_id in ids:
        for event in await pg.job_history(job_id):
            if event["to_state"] in terminal:
                found.add(f"{job_id}:{event['seq']}")
    return found
