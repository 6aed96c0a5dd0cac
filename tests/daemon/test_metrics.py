"""/metrics of real daemons: valid exposition, and counters that agree with Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.metrics_run import (
    FAIL_ATTEMPTS,
    Mix,
    cancel_when_running,
    metrics_config,
    promtool_check,
    put_load,
    scrape,
    spawn_daemons,
    states_when_done,
    summed_outcomes,
    total,
)
from tests.daemon.process import DaemonProcess, cli
from tests.real_servers import Servers
from tests.unrecorded import unrecorded
from tests.waiting import eventually

LONG = os.environ.get("RUNNER_CHAOS") == "long"
FROZEN_S = 0.5  # how long the refreshed-gauges test freezes its daemon


async def _agreement(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str, redis: Redis,
    pg: PgStore, spawn: Callable[..., DaemonProcess], daemons: int, mix: Mix,
) -> tuple[dict[str, float], list[str]]:  # fmt: skip
    """Run `mix` on `daemons` daemons; assert the summed counters equal runner_jobs."""
    urls = {"redis_url": servers.redis_url, "database_url": database_url, "prefix": prefix}
    _, ports = spawn_daemons(spawn, tmp_path, daemons, **urls)
    client = Client(load_settings(tmp_path / "d0.toml", env={}), redis, pg)
    doomed = await put_load(client, mix)
    await cancel_when_running(client, doomed)
    jobs = mix.succeed + mix.fail + mix.cancel
    states = await states_when_done(pg, jobs, timeout=60 + jobs / 100)
    assert states == {"succeeded": mix.succeed, "failed": mix.fail, "cancelled": mix.cancel}
    sums, texts = await summed_outcomes(
        ports, lambda s: all(s[k] >= states[k] for k in ("succeeded", "failed", "cancelled"))
    )
    print(f"{daemons} daemons, {jobs} jobs: postgres {dict(states)}, metrics {sums}")
    assert {k: sums[k] for k in ("succeeded", "failed", "cancelled")} == dict(states)
    assert sums["retrying"] == mix.fail * (FAIL_ATTEMPTS - 1)
    return sums, texts


async def test_one_daemon_counts_every_outcome_and_passes_promtool(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str, redis: Redis,
    pg: PgStore, spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """Succeeded, failed after retries and cancelled jobs: finished_total by outcome equals
    runner_jobs by state; retries, durations and lateness are counted per attempt; the
    exposition passes `promtool check metrics`, with the content type Prometheus expects."""
    mix = Mix(succeed=300, fail=20, cancel=5)
    _, texts = await _agreement(
        tmp_path, servers, database_url, prefix, redis, pg, spawn, 1, mix
    )  # fmt: skip
    text = texts[0]
    attempts = mix.succeed + mix.fail * FAIL_ATTEMPTS
    assert total(text, "runner_job_retries_total", task="fail_io") == mix.fail * 2
    assert total(text, "runner_job_duration_seconds_count") == attempts
    assert total(text, "runner_job_lateness_seconds_count") == attempts + mix.cancel
    assert total(text, "runner_recorder_events_total") > 0
    assert total(text, "runner_daemon_info") == 1
    assert total(text, "runner_jobs_running", kind="async") == 0
    assert total(text, "runner_pool_free_slots", kind="io") > 0
    content_type, _ = await scrape(int(load_port(tmp_path / "d0.toml")))
    assert content_type == CONTENT_TYPE_LATEST
    checked = promtool_check(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def load_port(config: Path) -> str:
    listen = load_settings(config, env={}).metrics_listen
    assert listen is not None
    return listen.rpartition(":")[2]


async def _stream_empty(redis: Redis, keys: Keys) -> bool:
    return await unrecorded(redis, keys) == 0


async def _refreshed(port: int, backlog: int) -> str | None:
    """The exposition once a refresh after the freeze set every gauge below, else None."""
    text = (await scrape(port))[1]
    done = (
        total(text, "runner_due_jobs", kind="async") == 7
        and total(text, "runner_recorder_backlog_entries") == backlog
        and total(text, "runner_event_loop_lag_seconds") >= FROZEN_S * 0.8
    )
    return text if done else None


async def test_refreshed_gauges_show_the_due_backlog_and_servers_up(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str, redis: Redis,
    pg: PgStore, spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """Due jobs in maintenance mode, the oldest one's lag, the recorder's backlog,
    store_up and the event loop's lag come from the periodic refresh (never the
    scrape), each checked against a value only a refresh can have set: 7 jobs due and
    held; a backlog equal to the stream's length while the history table is locked,
    so the recorder cannot commit; a loop lag of most of the time the daemon was
    frozen (SIGSTOP); both servers up (1, where a never-set gauge has no sample)."""
    urls = {"redis_url": servers.redis_url, "database_url": database_url, "prefix": prefix}
    (daemon,), (port,) = spawn_daemons(spawn, tmp_path, 1, **urls)
    config = tmp_path / "d0.toml"
    assert cli("pause", "--all", config=config).returncode == 0  # nothing is claimed
    client = Client(load_settings(config, env={}), redis, pg)
    keys = Keys(prefix)
    await eventually(lambda: _stream_empty(redis, keys), what="the recorder catching up")
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE runner_job_events IN ACCESS EXCLUSIVE MODE")
            await client.enqueue_many([client.new_job("noop") for _ in range(7)])
            backlog = await unrecorded(redis, keys)
            daemon.signal(signal.SIGSTOP)
            await asyncio.sleep(FROZEN_S)
            daemon.signal(signal.SIGCONT)
            text = await eventually(
                lambda: _refreshed(port, backlog), timeout=15, every=0.1,
                what="a refresh showing the due jobs, the backlog and the frozen loop",
            )  # fmt: skip
            assert await unrecorded(redis, keys) == backlog  # nothing was recorded meanwhile
    finally:
        await holder.close()
    assert backlog > 0
    assert total(text, "runner_due_jobs", kind="async") == 7
    assert total(text, "runner_oldest_due_lag_seconds") > 0
    assert total(text, "runner_recorder_backlog_entries") == backlog
    assert total(text, "runner_event_loop_lag_seconds") >= FROZEN_S * 0.8
    assert total(text, "runner_store_up", server="redis") == 1
    assert total(text, "runner_store_up", server="postgres") == 1


async def test_a_taken_port_is_one_clear_error_and_the_daemon_runs_on(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str, redis: Redis,
    pg: PgStore, spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """[metrics] listen on a port in use: an error naming the key and the address; jobs run."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = metrics_config(tmp_path / "d.toml", servers.redis_url, database_url, prefix, port)
        daemon = spawn(config)
        daemon.wait_ready()
        line = daemon.wait_for(lambda entry: entry.get("event", "").startswith("metrics endpoint"))
        assert line["level"] == "error"
        assert "[metrics] listen" in line["event"] and line["listen"] == f"127.0.0.1:{port}"
        done = cli("enqueue", "noop", "--json", config=config)
        assert done.returncode == 0, done.stderr
        daemon.wait_for(lambda entry: entry.get("event") == "job succeeded")
        assert daemon.proc.poll() is None


async def test_several_daemons_sum_to_postgres(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str, redis: Redis,
    pg: PgStore, spawn: Callable[..., DaemonProcess],
) -> None:  # fmt: skip
    """Daemons sharing one Redis and Postgres: their counters, summed, equal runner_jobs
    (10,000 jobs on three daemons under RUNNER_CHAOS=long)."""
    mix = Mix(succeed=8_500, fail=1_000, cancel=500) if LONG else Mix(1_500, 150, 20)
    await _agreement(
        tmp_path, servers, database_url, prefix, redis, pg, spawn, 3 if LONG else 2, mix
    )  # fmt: skip
