"""The engine end to end in one process: real Redis, real Postgres, real pools."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from runner.client.client import Client
from runner.client.job_info import JobInfo
from runner.config.settings import Settings
from runner.jobs import NewJob
from runner.store.postgres.store import PgStore
from runner.store.redis.store import RedisStore
from tests.daemon.harness import Running, drain, history, start_ms, states
from tests.daemon.test_cpu_pool import gone
from tests.waiting import eventually


async def test_each_kind_runs_and_every_transition_is_recorded(
    client: Client, settings: Settings, pg: PgStore
) -> None:
    """async, io and cpu jobs succeed, and Postgres holds scheduled -> running -> succeeded."""
    ids = [
        await client.enqueue("echo", [1, "two"], {"three": 3}),
        await client.enqueue("sleep_io", [0.05]),
        await client.enqueue("burn_cpu", [0.05]),
    ]
    await drain(settings)
    results = [(await client.get(i)).result for i in ids]
    assert results == [{"args": [1, "two"], "kwargs": {"three": 3}}, 0.05, 0.05]
    for job_id in ids:
        assert states(await history(pg, job_id)) == ["scheduled", "running", "succeeded"]
    row = await pg.get_job(ids[0])
    assert row is not None and row["state"] == "succeeded" and row["args"] == [1, "two"]


async def test_failing_task_retries_with_growing_delays_then_fails(
    client: Client, settings: Settings, pg: PgStore
) -> None:
    """retries=3, backoff 0.2 s without jitter: waits of 0.2, 0.4, 0.8 s, then failed."""
    job_id = await client.enqueue("fail", ["nope"])
    await drain(settings)
    job = await client.get(job_id)
    assert (job.state, job.attempt, job.error) == ("failed", 4, "RuntimeError: nope")
    events = await history(pg, job_id)
    assert states(events) == ["scheduled"] + ["running", "retrying"] * 3 + ["running", "failed"]
    waits = [e["detail"]["due_at"] - e["at_ms"] for e in events if e["to_state"] == "retrying"]
    assert [round(w / 100) for w in waits] == [2, 4, 8]
    starts = [start_ms(e) for e in events if e["to_state"] == "running"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and gaps[0] >= 200


async def test_bad_results_and_payloads_fail_with_reason_and_the_daemon_runs_on(
    client: Client, settings: Settings, store: RedisStore, pg: PgStore
) -> None:
    """Unserialisable results, undecodable args and unknown tasks each fail with a reason;
    the event that Postgres cannot take as JSON is recorded with its detail quarantined."""
    bad_async = await client.enqueue("bad_result")
    bad_cpu = await client.enqueue("bad_result_cpu")
    ghost = NewJob("ghost-1", "ghost", "async", "[]", "{}", 0, 3)
    await store.enqueue(ghost, "test", 0)
    garbled = NewJob("garbled-1", "echo", "async", "{not json", "{}", 0, 3)
    await store.enqueue(garbled, "test", 0)
    good = await client.enqueue("echo", ["still here"])
    await drain(settings)
    errors = {
        job_id: (await client.get(job_id))
        for job_id in (bad_async, bad_cpu, "ghost-1", "garbled-1")
    }
    assert all(job.state == "failed" and job.attempt == 1 for job in errors.values())
    assert "not JSON-serialisable" in (errors[bad_async].error or "")
    assert "not JSON-serialisable" in (errors[bad_cpu].error or "")
    assert "unknown task 'ghost'" in (errors["ghost-1"].error or "")
    assert "not valid JSON" in (errors["garbled-1"].error or "")
    assert (await client.get(good)).state == "succeeded"
    garbled_history = await history(pg, "garbled-1")
    assert states(garbled_history) == ["scheduled", "running", "failed"]
    assert "undecodable_detail" in garbled_history[0]["detail"]


async def test_cpu_timeout_kills_the_worker_and_the_next_cpu_job_runs(
    client: Client, make_settings: Callable[..., Settings]
) -> None:
    """On one daemon with one cpu process: a job past its timeout gets its worker killed
    (that process ends, the job is not awaited), a new worker replaces it, and the next
    cpu job runs on the new worker while the pool keeps its size."""
    async with Running(make_settings(cpu_processes=1)) as running:
        pool = running.daemon.cpu_pool()
        [old_pid] = await eventually(pool.worker_pids, what="the cpu worker starting")
        slow = await client.enqueue("slow_cpu", [30])
        failed = await eventually(lambda: _ended(client, slow), what="the slow job failing")
        assert failed.state == "failed" and "timeout of 0.5s" in (failed.error or "")
        # Killed when the job failed; the process may take a moment to be reaped.
        await eventually(lambda: gone(old_pid), what="the worker past its timeout ending")
        nxt = await client.enqueue("cpu_pid")
        done = await eventually(lambda: _ended(client, nxt), what="the next cpu job ending")
        [new_pid] = pool.worker_pids()
    assert done.state == "succeeded" and done.result == new_pid != old_pid


async def test_a_cpu_worker_that_dies_mid_job_fails_it_and_is_replaced(
    client: Client, make_settings: Callable[..., Settings]
) -> None:
    """A cpu worker killed while running a job (SIGKILL from inside, as the OOM killer
    would): the job fails saying so, the daemon runs on, and a new worker takes the next."""
    async with Running(make_settings(cpu_processes=1)) as running:
        pool = running.daemon.cpu_pool()
        [old_pid] = await eventually(pool.worker_pids, what="the cpu worker starting")
        crashed_id = await client.enqueue("crash_cpu")
        crashed = await eventually(lambda: _ended(client, crashed_id), what="the crash")
        nxt = await client.enqueue("cpu_pid")
        done = await eventually(lambda: _ended(client, nxt), what="the next cpu job ending")
        [new_pid] = pool.worker_pids()
    assert crashed.state == "failed"
    assert f"cpu worker (pid {old_pid}) was killed by signal SIGKILL" in (crashed.error or "")
    assert done.state == "succeeded" and done.result == new_pid != old_pid


async def _ended(client: Client, job_id: str) -> JobInfo | None:
    job = await client.get(job_id)
    return job if job.state in ("succeeded", "failed") else None


async def test_async_timeout_cancels_the_job(client: Client, settings: Settings) -> None:
    """An async job past its timeout is cancelled and reported as timed out."""
    job_id = await client.enqueue("slow_async", [30])
    await drain(settings)
    job = await client.get(job_id)
    assert job.state == "failed" and "timeout of 0.2s" in (job.error or "")


async def _spread_ms(pg: PgStore, ids: list[str]) -> int:
    events = [e for job_id in ids for e in await history(pg, job_id)]
    first_start = min(e["at_ms"] for e in events if e["to_state"] == "running")
    last_end = max(e["at_ms"] for e in events if e["to_state"] == "succeeded")
    return int(last_end - first_start)


async def test_four_io_jobs_of_one_second_run_in_parallel(
    client: Client, make_settings: Callable[..., Settings], pg: PgStore
) -> None:
    """4 blocking 1 s jobs with 4 threads finish in about 1 s, not 4."""
    ids = [await client.enqueue("sleep_io", [1]) for _ in range(4)]
    await drain(make_settings(io_threads=4))
    assert [(await client.get(i)).state for i in ids] == ["succeeded"] * len(ids)
    assert await _spread_ms(pg, ids) < 2500


async def test_two_cpu_jobs_of_one_second_run_in_parallel(
    client: Client, make_settings: Callable[..., Settings], pg: PgStore
) -> None:
    """2 cpu-bound 1 s jobs with 2 processes finish in about 1 s, not 2."""
    ids = [await client.enqueue("burn_cpu", [1]) for _ in range(2)]
    await drain(make_settings(cpu_processes=2))
    assert [(await client.get(i)).state for i in ids] == ["succeeded"] * len(ids)
    assert await _spread_ms(pg, ids) < 1900


async def test_a_full_process_pool_does_not_stall_async_jobs(
    client: Client, make_settings: Callable[..., Settings], pg: PgStore
) -> None:
    """With the only cpu worker busy, async and io jobs still start at once (no prefetch)."""
    cpu_ids = [await client.enqueue("burn_cpu", [1]) for _ in range(3)]
    quick = [await client.enqueue("echo", [1]), await client.enqueue("sleep_io", [0])]
    await drain(make_settings(cpu_processes=1))
    cpu_events = [e for job_id in cpu_ids for e in await history(pg, job_id)]
    first_cpu_end = min(e["at_ms"] for e in cpu_events if e["to_state"] == "succeeded")
    for job_id in quick:
        end = [e["at_ms"] for e in await history(pg, job_id) if e["to_state"] == "succeeded"]
        assert end[0] < first_cpu_end


async def test_delayed_job_never_starts_early(
    client: Client, settings: Settings, pg: PgStore
) -> None:
    """A job due in 1 s starts at or after its due time, and only a few ms late."""
    job_id = await client.enqueue("echo", delay=1.0)
    await drain(settings)
    events = await history(pg, job_id)
    due = events[0]["detail"]["due_at"]
    started = next(e for e in events if e["to_state"] == "running")
    assert 0 <= start_ms(started) - (due - 1) < 50  # due_at: the asked µs, up to a whole ms
    assert started["detail"]["late_ms"] >= 0
