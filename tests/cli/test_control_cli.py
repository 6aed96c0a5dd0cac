"""The command line's side of the request table: `runner pause|resume|cancel|retry|
delete|update ID...` on a job in every state, with the exit code and the line each
applied or refused request prints, --json, whole tasks, and usage errors.

The jobs are put in their states through the client and the store, as in
tests/client/test_requests.py; no daemon runs. What each request should do to each
state comes from the matrix written out in tests/request_matrix.py, never from
runner.states.TRANSITIONS, the table under test. CLI calls that do not depend on one
another run side by side, since each costs an interpreter start."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.daemon.recorder import Recorder
from runner.jobs import Outcome
from runner.states import REQUESTS, State
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli
from tests.request_matrix import applies, outcome, states_it_applies_to

DAEMON = "d1"
STATES: list[State] = [s for s in State if s is not State.DELETED]
CLAIMED = (State.RUNNING, State.SUCCEEDED, State.FAILED, State.RETRYING)
RESULT_KEYS = {"job_id", "action", "ok", "state", "message"}
# What the refusals of a running job say instead of the states the request applies to.
HINTS = {
    ("delete", State.RUNNING): "cancel it first (runner cancel ID), then delete it",
    ("retry", State.RUNNING): "wait for it to end, or cancel it first",
    ("update", State.RUNNING): "a running job cannot change; cancel it and enqueue anew",
}

Done = subprocess.CompletedProcess[str]


def _changes(action: str) -> list[str]:
    return ["--args", '["changed"]', "--retries", "4"] if action == "update" else []


def _side_by_side(calls: Sequence[Sequence[str]], config: Path) -> list[Done]:
    """Run independent CLI calls at the same time; their results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli(*args, config=config), calls))


async def _jobs_in_every_state(
    client: Client, store: RedisStore, groups: Sequence[str]
) -> dict[str, dict[State, str]]:
    """For each group, a job in each state, reached the way jobs reach it: the claimed
    ones first (one claim for every group), so that no claim picks up waiting ones."""
    ids = {group: {state: f"{group}-{state}" for state in STATES} for group in groups}
    for group in groups:
        for state in CLAIMED:
            await client.enqueue("echo", ["x"], job_id=ids[group][state])
    now = client.clock.now_ms()
    claimed = await store.claim_due(now, {"async": 1000}, DAEMON, now + 600_000)
    assert len(claimed.jobs) == len(CLAIMED) * len(groups)
    run = {job.id: job.claim for job in claimed.jobs}
    outcomes = []
    for group in groups:
        done, failed, later = (ids[group][s] for s in CLAIMED if s is not State.RUNNING)
        outcomes += [
            Outcome(done, 1, run[done], "succeed"),
            Outcome(failed, 1, run[failed], "fail"),
            Outcome(later, 1, run[later], "retry_later", due_at_ms=now + 3_600_000),
        ]
    await store.finish(now, DAEMON, outcomes)
    for group in groups:
        for state in (State.SCHEDULED, State.PAUSED, State.CANCELLED):
            await client.enqueue("echo", ["x"], job_id=ids[group][state], delay=1800)
    await client.request("pause", [ids[group][State.PAUSED] for group in groups])
    await client.request("cancel", [ids[group][State.CANCELLED] for group in groups])
    for group in groups:  # blocked on a job of its own that no request touches
        await client.enqueue("echo", ["x"], job_id=f"{group}-dependency", delay=1800)
        await client.enqueue("echo", ["x"], job_id=ids[group][State.BLOCKED],
                             depends_on=[f"{group}-dependency"])  # fmt: skip
    return ids


def _applied_line(action: str, job_id: str, state: State) -> str:
    return f"{action}: job {job_id} is {outcome(action, state)}"


def _check_refusal(line: str, action: str, job_id: str, state: State, head: str = "") -> None:
    """The refusal names the job and its state, then says what would be allowed; on
    stderr, `head` ("runner: ") starts it like every error line."""
    assert line.startswith(f"{head}cannot {action} job {job_id}: it is {state}; "), line
    sources = ", ".join(sorted(states_it_applies_to(action)))
    hint = HINTS.get((action, state), f"{action} applies to jobs that are {sources}")
    assert line.endswith(hint), line


@pytest.mark.parametrize("action", REQUESTS)
async def test_each_request_from_every_state_exits_and_says_why(
    action: str,
    client: Client,
    store: RedisStore,
    redis: Redis,
    keys: Keys,
    daemon_config: Callable[..., Path],
) -> None:
    """A call naming a job in every state and an unknown id: exit 1, one line on stdout
    for each job the request applied to (and it did apply), one on stderr for each
    refusal, naming the job and its state, and "no such job" for the unknown id;
    --json gives one result per id; a call naming only allowed jobs exits 0."""
    config = daemon_config()
    ids = await _jobs_in_every_state(client, store, [f"{action}-t", f"{action}-j", f"{action}-a"])
    text, as_json, allowed = ids[f"{action}-t"], ids[f"{action}-j"], ids[f"{action}-a"]
    fit = [state for state in STATES if applies(action, state)]
    unfit = [state for state in STATES if not applies(action, state)]
    mixed, json_done, all_ok = _side_by_side(
        [
            [action, *text.values(), "no-such", *_changes(action)],
            [action, *as_json.values(), "--json", *_changes(action)],
            [action, *(allowed[state] for state in fit), *_changes(action)],
        ],
        config,
    )

    assert mixed.returncode == 1, mixed
    assert mixed.stdout.splitlines() == [_applied_line(action, text[s], s) for s in fit]
    refusals = mixed.stderr.splitlines()
    assert len(refusals) == len(unfit) + 1, mixed.stderr
    for line, state in zip(refusals, unfit, strict=False):
        _check_refusal(line, action, text[state], state, head="runner: ")
    assert refusals[-1] == "runner: no such job 'no-such'"
    for state, job_id in text.items():
        now = await redis.hget(keys.job(job_id), stored("state"))
        expected = outcome(action, state) if applies(action, state) else state
        assert now == expected, (state, now)  # a deleted job: its deletion record

    assert json_done.returncode == 1 and json_done.stderr == "", json_done
    results = json.loads(json_done.stdout)
    assert [result["job_id"] for result in results] == list(as_json.values())
    for result, state in zip(results, STATES, strict=True):
        assert set(result) == RESULT_KEYS and result["action"] == action
        if applies(action, state):
            assert result["ok"] and result["state"] == outcome(action, state), result
            assert result["message"] == _applied_line(action, result["job_id"], state)
        else:
            assert not result["ok"] and result["state"] == state, result
            _check_refusal(result["message"], action, result["job_id"], state)

    assert all_ok.returncode == 0 and all_ok.stderr == "", all_ok
    assert all_ok.stdout.splitlines() == [_applied_line(action, allowed[s], s) for s in fit]


async def test_one_refusal_among_several_ids_fails_the_call_not_the_others(
    client: Client, store: RedisStore, redis: Redis, keys: Keys, daemon_config: Callable[..., Path]
) -> None:
    """`delete` of a finished, a running and a waiting job: the two others are deleted,
    the running one is refused with the advice to cancel it first, and the call exits 1."""
    ids = (await _jobs_in_every_state(client, store, ["several"]))["several"]
    done = cli(
        "delete", ids[State.SUCCEEDED], ids[State.RUNNING], ids[State.SCHEDULED],
        config=daemon_config(),
    )  # fmt: skip
    assert done.returncode == 1, done
    assert done.stdout.splitlines() == [
        f"delete: job {ids[State.SUCCEEDED]} is deleted",
        f"delete: job {ids[State.SCHEDULED]} is deleted",
    ]
    assert done.stderr.splitlines() == [
        f"runner: cannot delete job {ids[State.RUNNING]}: it is running; "
        "cancel it first (runner cancel ID), then delete it"
    ]
    for deleted in (ids[State.SUCCEEDED], ids[State.SCHEDULED]):  # their deletion records
        assert await redis.hget(keys.job(deleted), stored("state")) == "deleted"
    assert await redis.hget(keys.job(ids[State.RUNNING]), stored("state")) == "running"


def test_an_unknown_id_is_no_such_job(daemon_config: Callable[..., Path]) -> None:
    """Every request on an id no job has: exit 1 and "runner: no such job 'ID'" on
    stderr; with --json, a result with ok false and no state."""
    calls = [[action, "ghost", *_changes(action)] for action in REQUESTS]
    *texts, as_json = _side_by_side([*calls, ["cancel", "ghost", "--json"]], daemon_config())
    for action, done in zip(REQUESTS, texts, strict=True):
        assert (done.returncode, done.stdout, done.stderr) == (
            1, "", "runner: no such job 'ghost'\n"
        ), (action, done)  # fmt: skip
    assert as_json.returncode == 1 and as_json.stderr == "", as_json
    assert json.loads(as_json.stdout) == [
        {"job_id": "ghost", "action": "cancel", "ok": False, "state": None,
         "message": "no such job 'ghost'"},
    ]  # fmt: skip


async def test_pause_and_resume_a_task_or_everything(
    client: Client, daemon_config: Callable[..., Path]
) -> None:
    """--task NAME and --all (maintenance mode) take effect for every daemon (the paused
    tasks in Redis), say whether anything changed (the end of maintenance mode names
    the tasks still paused on their own), exit 0 either way, and give one result
    with --json."""
    config = daemon_config()
    task, every = _side_by_side([["pause", "--task", "echo"], ["pause", "--all"]], config)
    assert (task.returncode, task.stdout, task.stderr) == (0, "paused task echo\n", "")
    assert (every.returncode, every.stdout) == (
        0, "maintenance mode on: no daemon starts a job until `runner resume --all`\n"
    )  # fmt: skip
    assert set(await client.paused()) == {"echo", ":all"}
    assert (await client.paused())["echo"]["by"].startswith("client:")

    again, every_json = _side_by_side(
        [["pause", "--task", "echo"], ["pause", "--all", "--json"]], config
    )
    assert (again.returncode, again.stdout) == (0, "task echo was paused already\n")
    assert every_json.returncode == 0
    assert json.loads(every_json.stdout) == [
        {"task": None, "all": True, "action": "pause", "ok": True, "changed": False,
         "message": "maintenance mode was on already"},
    ]  # fmt: skip

    every = cli("resume", "--all", config=config)  # first: it names the task still paused
    assert (every.returncode, every.stdout) == (
        0, "maintenance mode ended: daemons start jobs again; "
        "tasks still paused on their own: echo\n",
    )  # fmt: skip
    task = cli("resume", "--task", "echo", "--json", config=config)
    assert task.returncode == 0
    assert json.loads(task.stdout) == [
        {"task": "echo", "all": False, "action": "resume", "ok": True, "changed": True,
         "message": "resumed task echo"},
    ]  # fmt: skip
    assert await client.paused() == {}

    again, every = _side_by_side([["resume", "--task", "echo"], ["resume", "--all"]], config)
    assert (again.returncode, again.stdout) == (0, "task echo was not paused\n")
    assert (every.returncode, every.stdout) == (0, "maintenance mode was not on\n")


async def test_usage_errors_exit_2_and_change_nothing(
    client: Client, store: RedisStore, daemon_config: Callable[..., Path]
) -> None:
    """No ids, ids beside --task or --all, an update with nothing to change, a bad
    --timeout, --args, --retries or due time, an unknown task: exit 2 with the reason,
    no traceback, and the job named keeps its state and arguments."""
    job_id = await client.enqueue("echo", ["x"], job_id="kept", delay=1800)
    cases: list[tuple[list[str], str]] = [
        (["cancel"], "runner: cancel: give job ids or --workflow WF (one of them)"),
        (["retry", job_id, "--workflow", "wf-x"], "give job ids or --workflow WF (one of them)"),
        (["update", "--args", "[]"], "runner: update: give job ids (one of them)"),
        (["pause"], "runner: pause: give job ids, --task NAME, --all or --workflow WF (one of"),
        (["pause", job_id, "--task", "echo"], "give job ids, --task NAME, --all or --workflow WF"),
        (["resume", job_id, "--all"], "give job ids, --task NAME, --all or --workflow WF"),
        (["resume", "--task", "echo", "--all"], "give job ids, --task NAME, --all or --workflow"),
        (["pause", "--task", "nope"], "runner: unknown task 'nope'"),
        (["cancel", "--task", "echo"], "unrecognized arguments: --task"),
        (["update", job_id], "runner: nothing to update: give args, kwargs, a due time"),
        (["update", job_id, "--timeout", "soon"], "runner: --timeout: expected a duration"),
        (["update", job_id, "--timeout", "0s"], "timeout must be a number of seconds > 0"),
        (["update", job_id, "--args", '{"a": 1}'], "runner: --args: must be a JSON array"),
        (["update", job_id, "--args", "[1,"], "runner: --args: not valid JSON"),
        (["update", job_id, "--kwargs", "[]"], "runner: --kwargs: must be a JSON object"),
        (["update", job_id, "--retries", "many"], "argument --retries: invalid int value"),
        (["update", job_id, "--retries", "-1"], "retries must be a whole number from 0"),
        (["update", job_id, "--in", "1m", "--at", "2030-01-01T00:00Z"], "give --in or --at"),
        (["update", job_id, "--at", "2030-01-01T00:00"], "--at: give a UTC offset"),
    ]
    for (args, message), done in zip(
        cases, _side_by_side([args for args, _ in cases], daemon_config()), strict=True
    ):
        assert done.returncode == 2, (args, done)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert done.stdout == "", (args, done.stdout)
    job = await store.get_job(job_id)
    assert job is not None and (job.state, job.args, job.seq) == ("scheduled", ["x"], 1)
    assert await client.paused() == {}


async def test_jobs_lists_a_page_and_the_next(
    daemon_config: Callable[..., Path], client: Client, store: RedisStore, pg: PgStore
) -> None:
    """`runner jobs --state scheduled --limit N` pages through Postgres, newest first,
    with the command for the next page; --json gives the cursor."""
    config = daemon_config()
    ids = []
    for i in range(5):
        ids.append(await client.enqueue("echo", [i], delay=1800))
        await asyncio.sleep(0.005)  # one creation time each: the order is by time
    await store.ensure_event_group()
    await Recorder(store, pg_store=pg, consumer="r", batch_events=500, flush_interval=0.05).drain()
    first = cli("jobs", "--state", "scheduled", "--limit", "3", "--json", config=config)
    assert first.returncode == 0, first.stderr
    page = json.loads(first.stdout)
    assert [job["id"] for job in page["jobs"]] == ids[::-1][:3]
    assert {job["state"] for job in page["jobs"]} == {"scheduled"}
    second = cli("jobs", "--state", "scheduled", "--limit", "3", "--after", page["next_cursor"],
                 "--json", config=config)  # fmt: skip
    rest = json.loads(second.stdout)
    assert [job["id"] for job in rest["jobs"]] == ids[::-1][3:] and rest["next_cursor"] is None
    text = cli("jobs", "--limit", "2", config=config).stdout
    assert ids[-1] in text and "next page: runner --config" in text and "--after" in text
    bad = cli("jobs", "--after", "nonsense", config=config)
    assert bad.returncode == 2 and "--after" in bad.stderr
