"""A Redis crash under load with the default `appendfsync everysec`: what is lost.

Redis appends each write to its append-only file before it replies, and fsyncs
that file once a second. So a crash of the Redis process alone loses nothing it
acknowledged (the kernel still holds what was written), while a crash of the
machine loses what the last fsync had not reached: about a second. Each test runs
a daemon under a stream of enqueues (jobs of 300 ms, dozens running at any
moment), SIGKILLs its private Valkey, starts it again from its append-only file
and counts acknowledged enqueues Redis no longer has, transitions PostgreSQL had
recorded that Redis lost, and jobs that ran more than once. The machine crash is
simulated: at the kill, the append-only file is cut back to the size it had a
second earlier. README.md's "Guarantees" states the result.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.errors import StoreUnavailable
from runner.servers.embedded import _valkey_binary
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from tests.chaos import figures
from tests.chaos.servers import RedisServer
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

JOB_MS = 300  # each job's body: dozens run at the moment of the kill
FEED_S, DOWN_S, AFTER_S = 3.0, 1.0, 1.0  # load before the kill, Redis away, load after
UNSYNCED_S = 1.0  # with everysec, what the last fsync may not have reached
SAMPLE_S = 0.02  # how often the append-only file's size is read
LONGEST_POSTPONED_S = 2.0  # everysec holds writes back this long at most when fsync lags
TASKS = {"tasks__noted_sleep": {"target": "tests.tasks:noted_sleep", "kind": "async", "retries": 2}}


@pytest.fixture
async def everysec_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Valkey, append-only with the default fsync once a second."""
    server = RedisServer(_valkey_binary(), tmp_path / "valkey", appendfsync="everysec")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@dataclass
class Crash:
    """What one crash cost, counted against what the client saw acknowledged."""

    acked: dict[str, float] = field(default_factory=dict)  # job id: when acknowledged
    labels: dict[str, str] = field(default_factory=dict)  # the ledger's label: job id
    refused: int = 0  # enqueues that failed (not acknowledged) while Redis was away
    killed_at: float = 0.0
    postponed_writes: int = 0  # aof_delayed_fsync before the kill: writes held back
    lost: set[str] = field(default_factory=set)  # acknowledged, gone from Redis
    went_back: set[str] = field(default_factory=set)  # Redis behind what Postgres recorded
    lost_transitions: int = 0  # recorded in Postgres, gone from Redis
    runs: Counter[str] = field(default_factory=Counter)  # job id: runs of its body
    unfinished: set[str] = field(default_factory=set)  # not succeeded in Postgres at the end

    def figures(self) -> dict[str, int]:
        return {
            "acknowledged": len(self.acked), "lost_enqueues": len(self.lost),
            "lost_transitions": self.lost_transitions, "went_back": len(self.went_back),
            "ran_twice": sum(1 for n in self.runs.values() if n > 1),
            "unfinished_in_postgres": len(self.unfinished),
        }  # fmt: skip

    def lost_ages(self) -> list[float]:
        """How long before the kill each lost enqueue was acknowledged (s)."""
        return sorted(self.killed_at - self.acked[job_id] for job_id in self.lost)


class Feeder:
    """Enqueues one job after another until stopped, noting each acknowledgement."""

    def __init__(self, client: Client, crash: Crash) -> None:
        self.client, self.crash = client, crash
        self.stop = asyncio.Event()

    async def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                job_id = await self.client.enqueue("noted_sleep", [f"n{n}", JOB_MS])
            except StoreUnavailable:
                self.crash.refused += 1
                await asyncio.sleep(0.02)
                continue
            self.crash.acked[job_id] = time.time()
            self.crash.labels[f"n{n}"] = job_id
            await asyncio.sleep(0.005)


class AofSizes:
    """The sizes of the append-only file's increments over time, to cut it back to
    the size it had at an earlier moment (a machine crash before the next fsync)."""

    def __init__(self, server: RedisServer) -> None:
        self.folder = server.folder / "appendonlydir"
        self.samples: list[tuple[float, dict[Path, int]]] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            sizes = {path: path.stat().st_size for path in self.folder.glob("*.incr.aof")}
            self.samples.append((time.time(), sizes))
            await asyncio.sleep(SAMPLE_S)

    def cut_back_to(self, moment: float) -> None:
        sizes = [sizes for at, sizes in self.samples if at <= moment][-1]
        for path in self.folder.glob("*.incr.aof"):
            with path.open("r+b") as file:
                file.truncate(sizes.get(path, 0))


async def _crash_under_load(
    server: RedisServer, client: Client, pg: PgStore, lose_unsynced: bool
) -> Crash:
    """SIGKILL Redis under load, restart it from its append-only file (cut back by a
    second when `lose_unsynced`), and count what it no longer has."""
    crash = Crash()
    feeder, sizes = Feeder(client, crash), AofSizes(server)
    running = [asyncio.create_task(feeder.run()), asyncio.create_task(sizes.run())]
    try:
        await asyncio.sleep(FEED_S)
        info = await client.redis.info("persistence")
        crash.postponed_writes = int(info["aof_delayed_fsync"])
        crash.killed_at = time.time()
        await asyncio.to_thread(server.stop, signal.SIGKILL)
        sizes.stop.set()
        if lose_unsynced:
            sizes.cut_back_to(crash.killed_at - UNSYNCED_S)
        await asyncio.sleep(DOWN_S)
        ids = list(crash.acked)
        recorded = await _recorded_seqs(pg, ids)  # nothing new to record since the kill
        await asyncio.to_thread(server.start)
        kept = await _redis_seqs(client, ids)
        await asyncio.sleep(AFTER_S)
    finally:
        feeder.stop.set()
        sizes.stop.set()
        await asyncio.gather(*running)
    crash.lost = {job_id for job_id in ids if job_id not in kept}
    behind = {job_id: seq - kept.get(job_id, 0) for job_id, seq in recorded.items()}
    crash.went_back = {job_id for job_id, n in behind.items() if n > 0 and job_id in kept}
    crash.lost_transitions = sum(n for n in behind.values() if n > 0)
    return crash


async def _recorded_seqs(pg: PgStore, ids: list[str]) -> dict[str, int]:
    rows = await pg.pool.fetch(
        "SELECT job_id, max(seq) AS seq FROM runner_job_events WHERE job_id = ANY($1)"
        " GROUP BY job_id", ids,
    )  # fmt: skip
    return {row["job_id"]: row["seq"] for row in rows}


async def _redis_seqs(client: Client, ids: list[str]) -> dict[str, int]:
    """Each job's seq in Redis, read in one round trip right after the restart."""
    keys = Keys(client.settings.key_prefix)
    async with client.redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(keys.job(job_id), stored("seq"))
        seqs = await pipe.execute()
    return {job_id: int(seq) for job_id, seq in zip(ids, seqs, strict=True) if seq is not None}


async def _settle(client: Client, pg: PgStore, crash: Crash, ledger: Path) -> None:
    """Wait until every job Redis kept is succeeded there and in Postgres; then note
    the jobs Postgres does not hold as succeeded, and the runs from the ledger."""
    kept = [job_id for job_id in crash.acked if job_id not in crash.lost]

    async def settled() -> dict[str, str] | None:
        live = await client.store.job_states(kept)
        recorded = await pg.recorded_states(list(crash.acked))
        done = all(live.get(i) == recorded.get(i) == "succeeded" for i in kept)
        return recorded if done else None

    recorded = await eventually(settled, timeout=30, what="every job Redis kept succeeded")
    crash.unfinished = {job_id for job_id in crash.acked if recorded.get(job_id) != "succeeded"}
    for line in (await asyncio.to_thread(ledger.read_text)).splitlines():
        label = line.split()[0]
        if label in crash.labels:  # not one whose enqueue failed as Redis died
            crash.runs[crash.labels[label]] += 1


def _assert_at_least_once(crash: Crash) -> None:
    """Every job Redis kept ran, more than once only if Redis lost one of its
    transitions; no job is left unfinished but one whose enqueue was lost."""
    never_ran = [i for i in crash.acked if i not in crash.lost and crash.runs[i] == 0]
    assert not never_ran, f"jobs that succeeded without running: {never_ran[:5]}"
    twice = {job_id for job_id, n in crash.runs.items() if n > 1}
    assert twice <= crash.went_back, f"ran again, no transition lost: {twice - crash.went_back}"
    stuck = crash.unfinished - crash.lost
    assert not stuck, f"jobs Redis kept left unfinished in Postgres: {sorted(stuck)[:5]}"


@pytest.fixture
def crash_config(
    tmp_path: Path, everysec_redis: RedisServer, database_url: str, prefix: str
) -> Path:
    return daemon_config_file(
        tmp_path / "runner.toml", everysec_redis.url, database_url, prefix, **TASKS
    )


async def test_a_redis_process_crash_loses_no_acknowledged_write(
    everysec_redis: RedisServer, crash_config: Path, tmp_path: Path, pg: PgStore,
    spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """Valkey SIGKILLed under enqueues and running jobs, appendfsync everysec: nothing
    it acknowledged is lost, unless it held writes back while an fsync lagged (then
    only writes from the 2 s before the kill); every job succeeds, each ran once."""
    ledger = tmp_path / "ledger"
    spawn(crash_config, {RUN_LEDGER_ENV: str(ledger)}).wait_ready()
    async with await Client.connect(load_settings(crash_config, {})) as client:
        crash = await _crash_under_load(everysec_redis, client, pg, False)
        await _settle(client, pg, crash, ledger)
    figures.record("redis process crash, everysec", **crash.figures())
    assert len(crash.acked) > 100 and crash.refused > 0  # load, and an outage it saw
    assert max(crash.lost_ages(), default=0) < LONGEST_POSTPONED_S, crash.lost_ages()
    if crash.postponed_writes == 0:  # the disk kept up: every reply followed its write
        assert (len(crash.lost), crash.lost_transitions) == (0, 0), crash.figures()
    _assert_at_least_once(crash)


async def test_a_machine_crash_loses_at_most_the_unsynced_second(
    everysec_redis: RedisServer, crash_config: Path, tmp_path: Path, pg: PgStore,
    spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """Valkey SIGKILLed and its append-only file cut back to its size a second before
    (what a power loss does with appendfsync everysec): the enqueues acknowledged in
    that second are gone, and only those; every job Redis kept succeeds, and the jobs
    that ran twice are those whose transitions Redis lost. A lost enqueue PostgreSQL
    had recorded stays there as recorded (see the README)."""
    ledger = tmp_path / "ledger"
    spawn(crash_config, {RUN_LEDGER_ENV: str(ledger)}).wait_ready()
    async with await Client.connect(load_settings(crash_config, {})) as client:
        crash = await _crash_under_load(everysec_redis, client, pg, True)
        await _settle(client, pg, crash, ledger)
    figures.record("redis machine crash (simulated), everysec", **crash.figures())
    assert crash.lost  # the cut took acknowledged writes: else this tested nothing
    assert max(crash.lost_ages()) < UNSYNCED_S + 2 * SAMPLE_S, crash.lost_ages()
    _assert_at_least_once(crash)
