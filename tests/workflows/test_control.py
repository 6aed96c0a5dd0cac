"""Requests on a whole workflow, on real Redis: pause holds every job of it (those
still waiting for their dependencies stay paused once released), resume puts each
back where it was (due, or waiting again), cancel ends every job still going, and
retry runs the failed and cancelled jobs again, each after the jobs it depends on;
results flow again, and a job that built its arguments does not build them twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner import chain, group, step
from runner.client.client import Client
from runner.jobs import Outcome
from runner.store.redis.gauges import read_queue_gauges
from runner.store.redis.keys import Keys
from runner.workflows.canvas import Step
from tests.daemon.process import cli

LEASE_MS = 60_000


async def _claim(client: Client) -> dict[str, str]:
    """The due jobs claimed now: id -> args."""
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": 50}, "d1", now + LEASE_MS)
    return {job.id: job.args_json for job in found.jobs}


async def _end(client: Client, redis: Redis, keys: Keys, job_id: str, action: str = "succeed",
               result: str = "") -> None:  # fmt: skip
    seq, attempt = await redis.hmget(keys.job(job_id), ["q", "n"])
    outcome = Outcome(job_id, int(str(attempt)), int(str(seq)), action, result_json=result)
    assert await client.store.finish(client.clock.now_ms(), "d1", [outcome]) == [1]


async def _states(client: Client, ids: list[str]) -> list[str]:
    states = await client.store.job_states(ids)
    return [states.get(i, "?") for i in ids]


def _flow(*names: str) -> list[Step]:
    return [step("echo", n, options={"job_id": n}) for n in names]


async def test_pause_holds_the_workflow_and_resume_puts_each_job_back(
    client: Client, redis: Redis, keys: Keys
) -> None:
    a, b, c = _flow("a", "b", "c")
    await client.enqueue_workflow(chain(a, b, c), workflow_id="wf-p")
    assert list(await _claim(client)) == ["a"]
    paused = await client.pause_workflow("wf-p")
    assert sorted((r.job_id, r.state) for r in paused) == [("b", "paused"), ("c", "paused")]
    await _end(client, redis, keys, "a")  # b is released, and stays paused
    assert await _states(client, ["a", "b", "c"]) == ["succeeded", "paused", "paused"]
    assert await _claim(client) == {}
    resumed = await client.resume_workflow("wf-p")
    assert [(r.job_id, r.state) for r in resumed] == [("b", "scheduled"), ("c", "blocked")]
    assert list(await _claim(client)) == ["b"]
    await _end(client, redis, keys, "b")
    assert list(await _claim(client)) == ["c"]


async def test_cancel_ends_every_job_still_going_and_nothing_after_starts(
    client: Client, redis: Redis, keys: Keys
) -> None:
    a, b1, b2, c = _flow("a", "b1", "b2", "c")
    await client.enqueue_workflow(chain(a, group(b1, b2), c), workflow_id="wf-c")
    assert list(await _claim(client)) == ["a"]
    await _end(client, redis, keys, "a")
    assert sorted(await _claim(client)) == ["b1", "b2"]  # running
    results = await client.cancel_workflow("wf-c")
    assert results[0].job_id == "c"  # the last first
    assert all(r.ok for r in results)
    assert await _states(client, ["a", "b1", "b2", "c"]) == ["succeeded", *["cancelled"] * 3]
    assert await _claim(client) == {}


async def test_retry_runs_the_failed_jobs_and_what_depends_on_them_in_order(
    client: Client, redis: Redis, keys: Keys
) -> None:
    a, b, c, d = _flow("a", "b", "c", "d")
    await client.enqueue_workflow(chain(a, b, c, d, pass_results=True), workflow_id="wf-r")
    await _claim(client)
    await _end(client, redis, keys, "a", result='"A"')
    assert await _claim(client) == {"b": '["A","b"]'}
    await _end(client, redis, keys, "b", "fail")
    assert await _states(client, ["a", "b", "c", "d"]) == ["succeeded", "failed", "cancelled",
                                                           "cancelled"]  # fmt: skip
    retried = await client.retry_workflow("wf-r")
    assert [(r.job_id, r.state) for r in retried] == [
        ("b", "scheduled"), ("c", "blocked"), ("d", "blocked")]  # fmt: skip
    assert await _claim(client) == {"b": '["A","b"]'}  # its arguments built once
    await _end(client, redis, keys, "b", result='"B"')
    assert await _claim(client) == {"c": '["B","c"]'}  # the new result flows on
    await _end(client, redis, keys, "c", result='"C"')
    assert await _claim(client) == {"d": '["C","d"]'}
    await _end(client, redis, keys, "d")
    assert await client.retry_workflow("wf-r") == []  # nothing failed: nothing to do
    doc = await client.workflow("wf-r")
    assert doc["states"] == {"succeeded": 4}


async def test_status_and_gauges_count_the_blocked_jobs_through_every_move(
    client: Client, redis: Redis, keys: Keys, daemon_config: Callable[..., Path]
) -> None:
    async def blocked() -> dict[str, int]:
        now = client.clock.now_ms()
        overview = await client.store.overview(now, now - 60_000)
        gauges = await read_queue_gauges(client.store, now)
        assert {q: g.blocked for q, g in gauges.items() if g.blocked} == (
            {"default": overview["blocked"]} if overview["blocked"] else {}
        )
        return dict(overview["blocked"])

    a, b, c = _flow("a", "b", "c")
    await client.enqueue_workflow(chain(a, b, c), workflow_id="wf-n")
    assert await blocked() == {"echo": 2}
    await client.pause_workflow("wf-n")
    assert await blocked() == {}
    await client.resume_workflow("wf-n")
    assert await blocked() == {"echo": 2}
    await _claim(client)
    await _end(client, redis, keys, "a")
    assert await blocked() == {"echo": 1}
    await client.cancel_workflow("wf-n")
    assert await blocked() == {}
    await client.retry_workflow("wf-n")
    assert await blocked() == {"echo": 1}  # c, waiting for b again
    shown = cli("status", config=daemon_config())
    assert "blocked      1 waiting for their dependencies (echo 1)" in shown.stdout, shown.stderr
    await client.delete("c")
    assert await blocked() == {}


async def test_a_job_retried_alone_after_its_dependency_failed_can_be_paused_and_resumed(
    client: Client, redis: Redis, keys: Keys
) -> None:
    """A job cancelled by a failed dependency, retried on its own, is due at once; a
    pause and a resume then make it due again, never blocked on a dependency that
    has ended."""
    a, b, c = _flow("a", "b", "c")
    await client.enqueue_workflow(chain(group(a, b), c), workflow_id="wf-alone")
    assert sorted(await _claim(client)) == ["a", "b"]
    await _end(client, redis, keys, "a", "fail")
    assert await _states(client, ["c"]) == ["cancelled"]
    assert await client.retry("c") == "scheduled"
    assert await client.pause("c") == "paused"
    assert await client.resume("c") == "scheduled"
