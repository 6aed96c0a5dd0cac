"""Chains, groups and chords on real Redis: a shape becomes jobs with dependencies,
enqueued in one call and marked with the workflow's id; nested shapes run in the
order they say; a failed step cancels what comes after it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from runner import chain, chord, group, step
from runner.client.client import Client
from runner.client.show import show_document
from runner.daemon.recorder import Recorder
from runner.errors import UsageError
from runner.jobs import ClaimedJob, Outcome
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.daemon.process import cli

LEASE_MS = 60_000


async def _rounds(client: Client, end: Callable[[ClaimedJob], Outcome]) -> list[list[ClaimedJob]]:
    """Claim every due job and end it as `end` says, round after round, until none is
    due: the jobs claimed, round by round."""
    rounds: list[list[ClaimedJob]] = []
    while True:
        now = client.clock.now_ms()
        found = await client.store.claim_due(now, {"async": 500}, "d1", now + LEASE_MS)
        if not found.jobs:
            return rounds
        await client.store.finish(client.clock.now_ms(), "d1", [end(job) for job in found.jobs])
        rounds.append(found.jobs)


async def _run_all_due(client: Client, redis: Redis, keys: Keys, fail: set[str]) -> list[str]:
    """Every round's jobs by their one argument (a round's sorted), those named in
    `fail` failing."""

    def end(job: ClaimedJob) -> Outcome:
        action = "fail" if job.args_json.strip('[]"') in fail else "succeed"
        return Outcome(job.id, job.attempt, job.claim, action)

    return [" ".join(sorted(job.args_json.strip('[]"') for job in jobs))
            for jobs in await _rounds(client, end)]  # fmt: skip


async def test_a_chain_of_groups_and_a_chord_run_in_the_order_they_say(
    client: Client, redis: Redis, keys: Keys
) -> None:
    flow = chain(
        step("echo", "fetch"),
        group(step("echo", f"parse{n}") for n in range(3)),
        chord([chain(step("echo", "a1"), step("echo", "a2")), step("echo", "b")],
              step("echo", "report"), pass_results=False),
    )  # fmt: skip
    workflow = await client.enqueue_workflow(flow, workflow_id="wf-test")
    assert workflow.id == "wf-test" and len(workflow.job_ids) == 8
    assert await _run_all_due(client, redis, keys, set()) == [
        "fetch", "parse0 parse1 parse2", "a1 b", "a2", "report",
    ]  # fmt: skip
    shown = await show_document(client.settings, workflow.job_ids[-1])
    assert shown["workflow"] == "wf-test" and len(shown["depends_on"]) == 2


async def test_a_failed_step_cancels_what_comes_after_it(
    client: Client, redis: Redis, keys: Keys
) -> None:
    flow = chain(step("echo", "one"), group(step("echo", "two"), step("echo", "side")),
                 step("echo", "three"))  # fmt: skip
    workflow = await client.enqueue_workflow(flow)
    assert workflow.id.startswith("wf-")
    assert await _run_all_due(client, redis, keys, {"two"}) == ["one", "side two"]
    states = await client.store.job_states(workflow.job_ids)
    assert [states[i] for i in workflow.job_ids] == ["succeeded", "failed", "succeeded",
                                                     "cancelled"]  # fmt: skip


async def test_a_step_may_run_whatever_came_before_it_did(
    client: Client, redis: Redis, keys: Keys
) -> None:
    flow = chain(step("echo", "one"), step("echo", "cleanup", options={"on_failure": "run"}))
    await client.enqueue_workflow(flow)
    assert await _run_all_due(client, redis, keys, {"one"}) == ["one", "cleanup"]


async def test_bad_shapes_are_refused(client: Client) -> None:
    with pytest.raises(TypeError, match="must be a step, chain or group"):
        chain(step("echo"), "not a step")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at least one step"):
        await client.enqueue_workflow(group())
    with pytest.raises(UsageError, match=r"no such task|unknown task|not declared"):
        await client.enqueue_workflow(chain(step("echo"), step("nope")))


async def _run_returning(client: Client, results: dict[str, str]) -> dict[str, str]:
    """The arguments each job ran with, by id; each returns the result `results` names
    for its last argument's text (JSON; null when not named)."""

    def end(job: ClaimedJob) -> Outcome:
        name = job.args_json.rsplit(",", 1)[-1].strip('[]" ')
        return Outcome(job.id, job.attempt, job.claim, "succeed",
                       result_json=results.get(name, "null"))  # fmt: skip

    return {job.id: job.args_json for jobs in await _rounds(client, end) for job in jobs}


async def test_results_flow_down_a_chain_and_into_a_chord_s_callback(client: Client) -> None:
    """With pass_results, a step gets the previous step's result as its first argument;
    a chord's callback gets its header's results as a list, in the header's order,
    whichever ended first."""
    flow = chain(
        step("echo", "one", options={"job_id": "one"}),
        step("echo", "two", options={"job_id": "two"}),
        chord([step("echo", f"p{n}", options={"job_id": f"p{n}"}) for n in range(3)],
              step("echo", "sum", options={"job_id": "sum"})),
        pass_results=True,
    )  # fmt: skip
    await client.enqueue_workflow(flow)
    ran = await _run_returning(client, {"one": "1", "two": '{"t":2}', "p0": "10", "p1": "11",
                                        "p2": '"twelve"'})  # fmt: skip
    assert ran["one"] == '["one"]'
    assert ran["two"] == '[1,"two"]'
    assert [ran[f"p{n}"] for n in range(3)] == [f'[{{"t":2}},"p{n}"]' for n in range(3)]
    assert ran["sum"] == '[[10,11,"twelve"],"sum"]'


async def test_a_job_takes_results_of_dependencies_that_ended_before_it(client: Client) -> None:
    await client.enqueue_workflow(step("echo", "early", options={"job_id": "early"}))
    assert await _run_returning(client, {"early": "[7]"}) == {"early": '["early"]'}
    await client.enqueue("echo", ["late"], job_id="late", depends_on=["early"],
                         pass_results=True)  # fmt: skip
    assert await _run_returning(client, {}) == {"late": '[[7],"late"]'}


async def test_runner_workflow_lists_the_graph_from_the_history(
    client: Client, pg: PgStore, daemon_config: Callable[..., Path]
) -> None:
    """Once recorded, `runner workflow WF` lists each job with its state and what it
    depends on, as PostgreSQL has them (with live states from Redis)."""
    flow = chord([step("echo", n, options={"job_id": f"h{n}"}) for n in range(2)],
                 step("echo", "cb", options={"job_id": "cb"}))  # fmt: skip
    await client.enqueue_workflow(flow, workflow_id="wf-listed")
    await client.store.ensure_event_group()
    await Recorder(client.store, pg_store=pg, consumer="r", batch_events=500,
                   flush_interval=0.05).drain()  # fmt: skip
    doc = await client.workflow("wf-listed")
    assert doc["states"] == {"scheduled": 2, "blocked": 1}
    assert [(j["id"], j["depends_on"]) for j in doc["jobs"]] == [
        ("cb", ["h0", "h1"]), ("h0", []), ("h1", []),
    ]  # fmt: skip
    done = cli("workflow", "wf-listed", config=daemon_config())
    assert done.returncode == 0, done.stderr
    assert "workflow wf-listed: 3 jobs (blocked 1, scheduled 2)" in done.stdout
    assert "cb  echo  blocked  after h0, h1" in done.stdout
    shown = cli("show", "wf-listed", config=daemon_config())  # a workflow's id: its graph
    assert shown.returncode == 0 and "workflow wf-listed: 3 jobs" in shown.stdout, shown.stderr
    nothing = cli("show", "wf-nothing", config=daemon_config())
    assert nothing.returncode != 0 and "wf-nothing" in nothing.stderr
    missing = cli("workflow", "wf-nothing", config=daemon_config())
    assert missing.returncode == 2 and "no job belongs to workflow" in missing.stderr
