"""Chains, groups and chords on real Redis: a shape becomes jobs with dependencies,
enqueued in one call and marked with the workflow's id; nested shapes run in the
order they say; a failed step cancels what comes after it."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from runner import chain, chord, group, step
from runner.client.client import Client
from runner.client.show import show_document
from runner.errors import UsageError
from runner.jobs import Outcome
from runner.store.redis.keys import Keys

LEASE_MS = 60_000


async def _run_all_due(client: Client, redis: Redis, keys: Keys, fail: set[str]) -> list[str]:
    """Claim and end every due job, round after round, until none is due: the args of
    each job claimed, round by round (a round's in sorted order)."""
    rounds: list[str] = []
    while True:
        now = client.clock.now_ms()
        found = await client.store.claim_due(now, {"async": 500}, "d1", now + LEASE_MS)
        if not found.jobs:
            return rounds
        outcomes = []
        for job in found.jobs:
            action = "fail" if job.args_json.strip('[]"') in fail else "succeed"
            outcomes.append(Outcome(job.id, job.attempt, job.claim, action))
        await client.store.finish(client.clock.now_ms(), "d1", outcomes)
        rounds.append(" ".join(sorted(job.args_json.strip('[]"') for job in found.jobs)))


async def test_a_chain_of_groups_and_a_chord_run_in_the_order_they_say(
    client: Client, redis: Redis, keys: Keys
) -> None:
    flow = chain(
        step("echo", "fetch"),
        group(step("echo", f"parse{n}") for n in range(3)),
        chord([chain(step("echo", "a1"), step("echo", "a2")), step("echo", "b")],
              step("echo", "report")),
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
