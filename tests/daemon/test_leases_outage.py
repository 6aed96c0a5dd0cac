"""After a Redis outage longer than a lease, live daemons' jobs are not reaped.

Every lease runs out while nobody can renew it; the first daemon back must not
take that for its peers' death. It waits one lease before reaping, which gives
the live owner time to renew.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.clock import SYSTEM_CLOCK
from runner.daemon.lease_keeper import LeaseKeeper
from runner.jobs import NewJob
from runner.servers.embedded import _valkey_binary, free_port
from runner.store import redis_client
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.waiting import eventually

LEASE_MS = 600


class Valkey:
    """A private, durable (append-only, fsync always) Valkey that a test can restart."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(_valkey_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[Valkey]:
    server = Valkey(tmp_path)
    server.start()
    yield server
    server.stop()


async def _until_up(store: RedisStore, timeout: float = 10.0) -> None:
    """Wait for the (re)started Valkey to answer; fail, naming it, if it never does."""

    async def answers() -> bool:
        try:
            await store.ping()
        except Exception:  # refused or reset while it starts: ask again
            return False
        return True

    port = store.redis.connection_pool.connection_kwargs["port"]
    await eventually(answers, timeout, every=0.05, what=f"valkey on port {port} answering")


async def test_the_first_daemon_back_waits_a_lease_before_reaping(valkey: Valkey) -> None:
    """Daemon A runs a job; Redis is down for 1 s (> the 0.6 s lease); daemon B's keeper
    comes back first but reaps nothing until A, back 0.3 s later, has renewed."""
    store = RedisStore(redis_client(f"redis://127.0.0.1:{valkey.port}/0"), Keys("outage"))
    try:
        await _until_up(store)
        now = SYSTEM_CLOCK.now_ms()
        await store.enqueue(NewJob("j", "echo", "async", "[]", "{}", now, 3), "t", now)
        [job] = (await store.claim_due(now, {"async": 1}, "A", now + LEASE_MS)).jobs
        owner = LeaseKeeper(store, daemon="A", clock=SYSTEM_CLOCK, lease_ms=LEASE_MS,
                            active={"j": job}, on_lost=lambda *_: None)  # fmt: skip
        other = LeaseKeeper(store, daemon="B", clock=SYSTEM_CLOCK, lease_ms=LEASE_MS,
                            active={}, on_lost=lambda *_: None)  # fmt: skip
        watching = asyncio.create_task(other.run())
        await asyncio.to_thread(valkey.stop)
        await asyncio.sleep(1.0)  # the outage: longer than the 0.6 s lease
        await asyncio.to_thread(valkey.start)
        await _until_up(store)
        await asyncio.sleep(0.3)  # B ticks meanwhile; A is slower to come back
        renewing = asyncio.create_task(owner.run())
        await asyncio.sleep(LEASE_MS / 1000 + 0.3)  # past B's pause: it may reap now
        for task in (watching, renewing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        record = await store.get_job("j")
        assert record is not None and (record.state, record.owner) == ("running", "A")
    finally:
        await store.redis.aclose()


async def test_waiting_for_a_server_that_stays_down_fails(valkey: Valkey) -> None:
    """The wait for Valkey to come back fails, naming it, when it never does: a test
    that went on against a server still down would prove nothing about leases."""
    store = RedisStore(redis_client(f"redis://127.0.0.1:{valkey.port}/0"), Keys("outage"))
    valkey.stop()
    try:
        with pytest.raises(AssertionError, match=f"valkey on port {valkey.port}"):
            await _until_up(store, timeout=0.5)
    finally:
        await store.redis.aclose()
