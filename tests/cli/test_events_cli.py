"""`runner events`: the transitions the stream holds, filtered, as text or JSON lines,
and with -f new ones until Ctrl-C; real Redis, the real command in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runner.client.client import Client
from runner.events.transition import transitions
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli

ROOT = Path(__file__).resolve().parents[2]


async def test_events_prints_what_the_stream_holds_and_exits(
    client: Client, store: RedisStore, daemon_config: Callable[..., Path]
) -> None:
    """Without -f: every transition still in the stream, oldest first, then exit 0;
    --json lines carry the live feed's data (position included), filters apply,
    and the text names each job and its move."""
    config = daemon_config()
    await client.enqueue("echo", [1], job_id="e1", delay=600)
    await client.enqueue("noop", job_id="n1", delay=600)
    await client.pause("e1")
    await client.cancel("n1")
    calls = [
        ("events", "--json"),
        ("events", "--json", "--task", "noop", "--state", "cancelled"),
        ("events",),
    ]
    with ThreadPoolExecutor(len(calls)) as pool:
        every, filtered, text = pool.map(lambda args: cli(*args, config=config), calls)
    for done in (every, filtered, text):
        assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = [json.loads(line) for line in every.stdout.splitlines()]
    stream = [
        (t.position, t.event_id, t.to_state)
        for entry in await store.stream_entries("-", 1000)
        for t in transitions(entry.id, entry.payload)
    ]
    assert [(d["position"], d["event_id"], d["to_state"]) for d in lines] == stream
    # Named, though only the first event of a job carries its task:
    assert [d["task"] for d in lines] == ["echo", "noop", "echo", "noop"]
    assert [
        (d["job_id"], d["to_state"]) for d in map(json.loads, filtered.stdout.splitlines())
    ] == [("n1", "cancelled")]
    assert "e1" in text.stdout and "scheduled -> paused" in text.stdout


async def test_events_follow_prints_new_transitions_and_ends_0_on_ctrl_c(
    client: Client, daemon_config: Callable[..., Path]
) -> None:
    """-f keeps printing transitions as they are written (the pause is written after
    the command printed the job's first line, so after it read the stream's end)
    until SIGINT, which ends it with exit 0 and nothing on stderr."""
    config = daemon_config()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env["PYTHONFAULTHANDLER"] = "1"  # a command that hangs shows where, on SIGABRT
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", "events", "-f", "--json", "--job", "f2",
        "--config", str(config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for n in range(3):
            await client.enqueue("echo", job_id=f"f{n}", delay=600)
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        await client.pause("f2")
        second = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert [(d["job_id"], d["to_state"]) for d in (first, second)] == [
            ("f2", "scheduled"), ("f2", "paused"),
        ]  # fmt: skip
        proc.send_signal(signal.SIGINT)
        _, err = await _ended(proc, 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0 and err == b""


async def _ended(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """Its output once it exits; if it has not within `timeout`, every thread's stack
    (faulthandler on SIGABRT) in the failure."""
    output = asyncio.ensure_future(proc.communicate())
    done, _ = await asyncio.wait({output}, timeout=timeout)
    if not done:
        proc.send_signal(signal.SIGABRT)
        _, err = await output
        raise AssertionError(f"no exit {timeout} s after SIGINT:\n{err.decode()}")
    return output.result()


def test_events_with_redis_down_says_so_and_exits_1(daemon_config: Callable[..., Path]) -> None:
    """A Redis that does not answer is one readable error naming it, exit 1."""
    config = daemon_config(redis={"url": "redis://127.0.0.1:1/0"})
    done = cli("events", config=config)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot reach a server" in done.stderr and "redis" in done.stderr
