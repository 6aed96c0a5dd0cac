"""Every cell of the request table: each request from each state, applied or refused,
through the client, with its event in the history and Redis and Postgres agreeing.
What each cell should do comes from the matrix written out in tests/request_matrix.py,
never from runner.states.TRANSITIONS, the table under test."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.daemon.recorder import Recorder
from runner.errors import JobNotFound, RequestRefused
from runner.jobs import Outcome
from runner.states import REQUESTS, State
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests import request_matrix
from tests.request_matrix import MISSING, NOT_FOUND, REFUSED, outcome, states_it_applies_to

DAEMON = "d1"
STATES: list[State] = [s for s in State if s is not State.DELETED]


async def _jobs_in_every_state(client: Client, store: RedisStore, name: str) -> dict[State, str]:
    """A job in each state, reached the way jobs reach it: the claimed ones first, so
    that no later claim picks up the waiting ones."""
    ids: dict[State, str] = {state: f"{name}-{state}" for state in STATES}
    claimed_states = (State.RUNNING, State.SUCCEEDED, State.FAILED, State.RETRYING)
    for state in claimed_states:
        await client.enqueue("echo", ["x"], job_id=ids[state])
    now = client.clock.now_ms()
    claimed = await store.claim_due(now, {"async": 100}, DAEMON, now + 60_000)
    assert sorted(job.id for job in claimed.jobs) == sorted(ids[s] for s in claimed_states)
    run = {job.id: job.claim for job in claimed.jobs}
    await store.finish(now, DAEMON, [
        Outcome(ids[State.SUCCEEDED], 1, run[ids[State.SUCCEEDED]], "succeed"),
        Outcome(ids[State.FAILED], 1, run[ids[State.FAILED]], "fail"),
        Outcome(ids[State.RETRYING], 1, run[ids[State.RETRYING]], "retry_later",
                due_at_ms=now + 3_600_000),
    ])  # fmt: skip
    for state in (State.SCHEDULED, State.PAUSED, State.CANCELLED):
        await client.enqueue("echo", ["x"], job_id=ids[state])
    await client.pause(ids[State.PAUSED])
    await client.cancel(ids[State.CANCELLED])
    # Blocked on a job of its own that no request touches.
    await client.enqueue("echo", ["x"], job_id=f"{name}-dependency", delay=3600)
    await client.enqueue(
        "echo", ["x"], job_id=ids[State.BLOCKED], depends_on=[f"{name}-dependency"]
    )
    return ids


async def _record(store: RedisStore, pg: PgStore) -> None:
    await store.ensure_event_group()
    await Recorder(store, pg_store=pg, consumer="r", batch_events=500, flush_interval=0.05).drain()


def _changes(action: str) -> dict[str, object]:
    return {"args": ["changed"], "retries": 4} if action == "update" else {}


@pytest.mark.parametrize("action", REQUESTS)
async def test_every_request_from_every_state(
    action: str, client: Client, store: RedisStore, redis: Redis, keys: Keys, pg: PgStore
) -> None:
    """Each request on a job in each state, and on an id no job has, does what the
    matrix says: applied, the job is in the matrix's state and the request is one event
    saying who asked; refused, the job keeps its state and the refusal names it; a
    missing id is not found."""
    made = await _jobs_in_every_state(client, store, action)
    ids = {str(state): job_id for state, job_id in made.items()}
    ids[MISSING] = f"{action}-missing"
    assert set(ids) == set(request_matrix.MATRIX)  # every row of the matrix
    for state, job_id in ids.items():
        expected = outcome(action, state)
        assert await redis.hget(keys.job(job_id), stored("state")) == (
            None if state == MISSING else state
        )
        [result] = await client.request(action, [job_id], **_changes(action))
        if expected == NOT_FOUND:
            assert not result.ok and result.message == f"no such job '{job_id}'", result
            with pytest.raises(JobNotFound):
                await getattr(client, action)(job_id, **_changes(action))
        elif expected == REFUSED:
            assert not result.ok and result.state == state, (action, state, result)
            assert f"cannot {action} job {job_id}: it is {state}" in result.message
            assert await redis.hget(keys.job(job_id), stored("state")) == state
            with pytest.raises(RequestRefused, match=f"it is {state}"):
                await getattr(client, action)(job_id, **_changes(action))
        else:
            assert result.ok and result.state == expected, (action, state, result)
            now = await redis.hget(keys.job(job_id), stored("state"))
            assert now == expected, (action, state, now)  # a deleted job: its deletion record
    await _record(store, pg)
    for state in states_it_applies_to(action):
        job_id = ids[state]
        history = await pg.job_history(job_id)
        last = history[-1]
        assert (last["from_state"], last["to_state"]) == (state, outcome(action, state))
        assert last["detail"]["by"] == client.origin
        assert (await pg.get_job(job_id) or {})["state"] == outcome(action, state)


async def test_unknown_ids_are_not_found(client: Client) -> None:
    [result] = await client.request("cancel", ["no-such"])
    assert not result.ok and result.message == "no such job 'no-such'"
    for action in REQUESTS:
        with pytest.raises(JobNotFound):
            await getattr(client, action)("no-such", **_changes(action))


async def test_delete_of_a_running_job_says_to_cancel_first(
    client: Client, store: RedisStore
) -> None:
    ids = await _jobs_in_every_state(client, store, "busy")
    with pytest.raises(RequestRefused, match="cancel it first"):
        await client.delete(ids[State.RUNNING])


async def test_update_changes_what_runs_and_postgres_learns_it(
    client: Client, store: RedisStore, redis: Redis, keys: Keys, pg: PgStore
) -> None:
    """New args, kwargs, due time, retries and timeout reach the claim and the record."""
    job_id = await client.enqueue("echo", ["old"], delay=1800)
    await client.update(job_id, args=[], kwargs={"k": 1}, delay=0, retries=4, timeout=2.5)
    now = client.clock.now_ms()
    claimed = await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)
    [job] = [j for j in claimed.jobs if j.id == job_id]
    assert (job.args_json, job.kwargs_json, job.max_attempts, job.timeout) == (
        "[]", '{"k":1}', 5, 2.5,
    )  # fmt: skip
    await _record(store, pg)
    row = await pg.get_job(job_id) or {}
    assert (row["args"], row["kwargs"], row["state"]) == ([], {"k": 1}, "running")
    update = next(h for h in await pg.job_history(job_id) if h["detail"].get("update"))
    assert update["detail"]["args"] == [] and update["detail"]["max_attempts"] == 5


async def test_resume_of_a_job_whose_time_passed_makes_it_due_now(
    client: Client, store: RedisStore
) -> None:
    job_id = await client.enqueue("echo", [], delay=0.05)
    await client.pause(job_id)
    now = client.clock.now_ms() + 100
    assert not (await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)).jobs
    await client.resume(job_id)
    claimed = await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)
    assert [j.id for j in claimed.jobs] == [job_id]


async def test_a_paused_task_holds_its_due_jobs_until_resumed(
    client: Client, store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """Other tasks' jobs still start; the paused task's stay due, held, and start
    once it is resumed; maintenance mode claims nothing at all."""
    held = [await client.enqueue("echo", [i]) for i in range(3)]
    other = await client.enqueue("noop")
    assert await client.pause_task("echo")
    assert not await client.pause_task("echo")  # already paused
    now = client.clock.now_ms() + 10
    claimed = await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)
    assert [j.id for j in claimed.jobs] == [other]
    assert await store.held_count("echo") == 3
    assert {await redis.hget(keys.job(i), stored("state")) for i in held} == {"scheduled"}
    assert await client.resume_task("echo")
    await client.pause_all()
    assert not (await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)).jobs
    assert ":all" in await client.paused()
    await client.resume_all()
    claimed = await store.claim_due(now, {"async": 10}, DAEMON, now + 60_000)
    assert sorted(j.id for j in claimed.jobs) == sorted(held)
