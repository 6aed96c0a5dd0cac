"""Whatever a task does, it fails its own job, never the daemon.

SystemExit, KeyboardInterrupt, GeneratorExit and a CancelledError the task
raised itself end the job `failed` with the cause named; arguments that do not
fit the function fail at once, since no retry can fix them; and the daemon
runs the next job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runner.client.client import Client
from runner.client.job_info import JobInfo
from runner.config.settings import Settings
from runner.daemon.execution import JobExecution
from runner.jobs import ClaimedJob
from runner.store.postgres.store import PgStore
from tests.conftest import TEST_TASKS, task
from tests.daemon.harness import Running, drain, history, states
from tests.waiting import eventually

BAD_TASKS = {
    t.name: t
    for t in (
        task("exit_async", "exit_async", retries=2, backoff=0.01),
        task("exit_io", "exit_io", "io", retries=2, backoff=0.01),
        task("exit_cpu", "exit_io", "cpu"),
        task("interrupt_async", "interrupt_async"),
        task("interrupt_io", "interrupt_io", "io"),
        task("cancel_itself", "cancel_itself"),
        task("generator_exit", "generator_exit"),
        task("two_args_async", "two_args_async", retries=3, backoff=0.01),
        task("two_args_io", "two_args_io", "io", retries=3, backoff=0.01),
        task("two_args_cpu", "two_args_cpu", "cpu", retries=3, backoff=0.01),
        task("inner_type_error", "inner_type_error", "io", retries=1, backoff=0.01),
    )
}


async def test_base_exceptions_fail_the_job_with_their_name(
    make_settings: Callable[..., Settings], client: Client, pg: PgStore
) -> None:
    """Each kind of BaseException, in async and io tasks: failed (after its retries),
    the error naming it, and a normal job after them still succeeds."""
    settings = make_settings(tasks={**TEST_TASKS, **BAD_TASKS})
    client.settings = settings
    expected = {
        "exit_async": ("SystemExit: 3", 3),
        "exit_io": ("SystemExit: 3", 3),
        "interrupt_async": ("KeyboardInterrupt", 1),
        "interrupt_io": ("KeyboardInterrupt", 1),
        "cancel_itself": ("CancelledError", 1),
        "generator_exit": ("GeneratorExit", 1),
    }
    ids = {
        name: await client.enqueue(name, [3] if name.startswith("exit") else [])
        for name in expected
    }
    in_worker = await client.enqueue("exit_cpu", [3])
    after = await client.enqueue("echo", ["still here"])
    await drain(settings)
    for name, (error, attempts) in expected.items():
        job = await client.get(ids[name])
        assert (job.state, job.error, job.attempt) == ("failed", error, attempts), name
    job = await client.get(in_worker)  # the same words, then the worker's traceback
    assert job.state == "failed" and (job.error or "").startswith("SystemExit: 3\n")
    assert (await client.get(after)).state == "succeeded"


async def test_arguments_that_do_not_fit_fail_at_once_without_retries(
    make_settings: Callable[..., Settings], client: Client, pg: PgStore
) -> None:
    """A TypeError from the call itself (async, io and cpu) fails at attempt 1 with the
    signature in the message; a TypeError from inside the function is retried."""
    settings = make_settings(tasks={**TEST_TASKS, **BAD_TASKS})
    client.settings = settings
    ids = {name: await client.enqueue(name, [1]) for name in BAD_TASKS if "two_args" in name}
    inner = await client.enqueue("inner_type_error", [1])
    await drain(settings)
    for name, job_id in ids.items():
        job = await client.get(job_id)
        assert (job.state, job.attempt) == ("failed", 1), name
        assert "do not fit" in (job.error or "") and "missing a required argument: 'b'" in (
            job.error or ""
        )
        assert states(await history(pg, job_id)) == ["scheduled", "running", "failed"]
    job = await client.get(inner)
    assert (job.state, job.attempt) == ("failed", 2)
    assert (job.error or "").startswith("TypeError")


async def test_a_job_task_that_crashes_in_runner_fails_its_job_and_is_not_kept(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault in runner's own code while it sees a job through (injected here) is
    observed: the job fails naming it, leaves the daemon's running set (so its lease is
    no longer renewed), and the daemon runs the next job."""
    real = JobExecution._see_through

    async def crashing(
        self: JobExecution, job: ClaimedJob, task: Any, work: Awaitable[Any], **kwargs: Any
    ) -> None:
        if job.task == "noop":  # the work ends, then runner fails before any outcome
            await work
            raise RuntimeError("injected fault")
        await real(self, job, task, work, **kwargs)

    monkeypatch.setattr(JobExecution, "_see_through", crashing)
    async with Running(settings) as running:
        crashed = await client.enqueue("noop")
        failed = await eventually(lambda: _failed(client, crashed), what="the job failing")
        await eventually(  # once the finisher's reply is handled: no lease renewed any more
            lambda: crashed not in running.daemon.active, what="the job leaving the running set"
        )
        after = await client.wait(await client.enqueue("echo", [1]), timeout=10)
    assert "injected fault" in (failed.error or "")
    assert after.state == "succeeded"


async def _failed(client: Client, job_id: str) -> JobInfo | None:
    job = await client.get(job_id)
    return job if job.state == "failed" else None
