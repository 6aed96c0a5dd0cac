"""A real daemon process: delayed jobs, bad input, SIGKILL, graceful stop."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.harness import start_ms
from tests.daemon.process import DaemonProcess, cli, wait_for_history


async def test_delayed_job_runs_on_time_and_reaches_postgres_within_a_second(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """`enqueue --in 3s` never starts early; its rows reach Postgres within 1 s of the end."""
    config = daemon_config()
    daemon = spawn(config)
    daemon.wait_ready()
    done = cli("enqueue", "echo", "--args", '["hi"]', "--in", "3s", "--json", config=config)
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["id"]
    history, seen_at = await wait_for_history(pg, job_id, "succeeded")
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        (None, "scheduled"),
        ("scheduled", "running"),
        ("running", "succeeded"),
    ]
    enqueued, finished = history[0]["at_ms"], history[2]["at_ms"]
    started = start_ms(history[1])  # claimed up to the lead before, held until due
    assert started - enqueued > 3000 - 1  # the enqueue's time is a whole ms
    assert started - history[0]["detail"]["due_at"] > -1  # due_at: whole ms, rounded up
    assert seen_at * 1000 - finished < 1000
    shown = cli("show", job_id, "--json", config=config)
    assert json.loads(shown.stdout)["result"] == {"args": ["hi"], "kwargs": {}}


async def test_bad_input_gets_a_clear_error_and_the_daemon_keeps_running(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """Unknown task and malformed arguments exit 2 with a message; a bad result fails the job."""
    config = daemon_config()
    daemon = spawn(config)
    daemon.wait_ready()
    unknown = cli("enqueue", "no_such_task", config=config)
    assert unknown.returncode == 2
    assert "unknown task 'no_such_task'" in unknown.stderr and "echo" in unknown.stderr
    bad_json = cli("enqueue", "echo", "--args", "[1,", config=config)
    assert bad_json.returncode == 2 and "--args: not valid JSON" in bad_json.stderr
    not_a_list = cli("enqueue", "echo", "--args", '{"a": 1}', config=config)
    assert not_a_list.returncode == 2 and "must be a JSON array" in not_a_list.stderr
    bad_delay = cli("enqueue", "echo", "--in", "soon", config=config)
    assert bad_delay.returncode == 2 and "--in" in bad_delay.stderr
    assert "Traceback" not in unknown.stderr + bad_json.stderr + bad_delay.stderr
    bad = json.loads(cli("enqueue", "bad_result", "--json", config=config).stdout)["id"]
    history, _ = await wait_for_history(pg, bad, "failed")
    assert "not JSON-serialisable" in history[-1]["detail"]["error"]
    good = json.loads(cli("enqueue", "echo", "--json", config=config).stdout)["id"]
    await wait_for_history(pg, good, "succeeded")
    assert daemon.proc.poll() is None
    failed = [line for line in daemon.events("job failed") if line["job_id"] == bad]
    assert failed and "not JSON-serialisable" in failed[0]["error"]


async def test_sigkill_mid_job_runs_it_again_after_the_lease_expires(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """A daemon killed mid-job loses its lease; the next daemon retries the job to success."""
    config = daemon_config()
    first = spawn(config)
    first.wait_ready()
    job_id = json.loads(
        cli("enqueue", "sleep_io", "--args", "[1.5]", "--json", config=config).stdout
    )["id"]
    first.wait_for(lambda line: line.get("event") == "job started" and line["job_id"] == job_id)
    first.signal(signal.SIGKILL)  # mid-job: it runs 1.5 s
    first.wait_exit()
    second = spawn(config)
    second.wait_ready()
    history, _ = await wait_for_history(pg, job_id, "succeeded", timeout=30)
    assert [(h["to_state"], h["attempt"]) for h in history] == [
        ("scheduled", 0),
        ("running", 1),
        ("retrying", 1),
        ("running", 2),
        ("succeeded", 2),
    ]
    assert "lease expired" in history[2]["detail"]["reason"]
    assert history[1]["daemon"] != history[3]["daemon"]
    assert [line["job_id"] for line in second.events("lease expired")] == [job_id]


async def test_sigterm_stops_cleanly_with_exit_code_zero(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    redis: Redis,
    prefix: str,
) -> None:
    """SIGTERM: running jobs finish within the grace, everything is recorded, exit 0,
    and the daemon leaves no consumer behind in the stream's group."""
    config = daemon_config()
    daemon = spawn(config)
    daemon.wait_ready()
    job_id = json.loads(
        cli("enqueue", "sleep_io", "--args", "[0.5]", "--json", config=config).stdout
    )["id"]
    daemon.wait_for(lambda line: line.get("event") == "job started")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    history = await pg.job_history(job_id)
    assert [h["to_state"] for h in history] == ["scheduled", "running", "succeeded"]
    assert daemon.events("daemon stopped")
    keys = Keys(prefix)
    assert await redis.xinfo_consumers(keys.events, keys.recorder_group) == []
