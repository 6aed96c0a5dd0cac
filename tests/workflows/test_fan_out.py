"""Fan-out at run time on real daemons: a running job hands out 1,000 children and a
join by returning them (runner.fan_out); the join runs once, after every child, with
their results; what followed the job in its chain waits for the join and takes its
result; a cpu task hands out alike. The hand-out itself, on real Redis: a second run
of the same job hands out no second copy, and a malformed fan-out fails its job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from runner import chain, fan_out, group, step
from runner.client.client import Client
from runner.config.settings import load_settings
from runner.daemon.hand_out import HandOut, HandOutFailed
from runner.jobs import ClaimedJob
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess
from tests.ledger import read_runs
from tests.limits.shared import all_succeeded
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

CHILDREN = 1000
TASKS = {
    "tasks__discover": {"target": "tests.tasks:discover", "kind": "async"},
    "tasks__discover_cpu": {"target": "tests.tasks:discover_cpu", "kind": "cpu"},
    "tasks__child": {"target": "tests.tasks:noted_sleep", "kind": "async"},
    "tasks__join": {"target": "tests.tasks:noted_join", "kind": "async"},
    "tasks__after": {"target": "tests.tasks:noted_join", "kind": "async"},
}


async def test_a_job_hands_out_1000_children_and_a_join_that_runs_once_after_them(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    config = daemon_config(pools={"async": 50}, **TASKS)
    daemons = [spawn(config, {RUN_LEDGER_ENV: str(ledger)}) for _ in range(3)]
    for daemon in daemons:
        daemon.wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        flow = chain(step("discover", "d", CHILDREN, 5), step("after", "after"),
                     pass_results=True)  # fmt: skip
        workflow = await client.enqueue_workflow(flow, workflow_id="wf-fan")
        discover_id, after_id = workflow.job_ids
        total = 2 + CHILDREN + 1
        await eventually(lambda: all_succeeded(pg, total), timeout=120, what="all ran")
        summary = await client.result(discover_id)
        after = await client.result(after_id)
        wf = await pg.workflow_jobs("wf-fan", 5000)
        recorded = await pg.get_job(after_id)
    runs = read_runs(ledger)
    children_end = max(end for n in range(CHILDREN) for _, end in runs[f"d.c{n}"])
    assert all(len(runs[f"d.c{n}"]) == 1 for n in range(CHILDREN))
    assert len(runs["d.join"]) == 1 and runs["d.join"][0][0] >= children_end
    assert len(runs["after"]) == 1 and runs["after"][0][0] >= runs["d.join"][0][1]
    assert after == CHILDREN  # the join's result: it got every child's
    assert recorded is not None and recorded["args"] == [CHILDREN, "after"]  # as it ran
    assert summary == {"fan_out": {"workflow": "wf-fan", "handed_out": CHILDREN + 1,
                                   "then": [f"{discover_id}.{CHILDREN + 1}"]}}  # fmt: skip
    assert len(wf) == total


async def test_a_cpu_task_hands_out_alike(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    config = daemon_config(**TASKS)
    spawn(config, {RUN_LEDGER_ENV: str(ledger)}).wait_ready()
    async with await Client.connect(load_settings(config, env={})) as client:
        parent = await client.enqueue("discover_cpu", ["p", 10])
        await eventually(lambda: all_succeeded(pg, 12), timeout=60, what="all ran")
        join = await client.result(f"{parent}.11")
    assert join == 10
    runs = read_runs(ledger)
    assert runs["p.join"][0][0] >= max(runs[f"p.c{n}"][0][1] for n in range(10))


async def _claimed(client: Client, task: str, args: list[object]) -> ClaimedJob:
    job_id = await client.enqueue(task, args)
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": 10}, "d1", now + 60_000)
    (job,) = found.jobs
    assert job.id == job_id
    return job


async def test_a_second_run_hands_out_no_second_copy(client: Client) -> None:
    job = await _claimed(client, "echo", [])
    hand_out = HandOut(lambda: client)
    spec = fan_out(group(step("echo", n) for n in range(3)), then=step("echo", "join"))
    first = await hand_out(job, spec)
    again = await hand_out(job, spec)  # the run after a crash
    assert first == again
    ids = [f"{job.id}.{n}" for n in range(1, 5)]
    states = await client.store.job_states([*ids, f"{job.id}.5"])
    assert states == dict.fromkeys(ids, "blocked")
    assert orjson.loads(first[1]) == [ids[-1]]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"runner:fan_out": {"children": {"step": "nope"}}}, "unknown task 'nope'"),
        ({"runner:fan_out": {"children": 3}}, "children: expected a step, chain or group"),
        ({"runner:fan_out": []}, "a fan-out needs its children"),
    ],
)
async def test_a_malformed_fan_out_fails_its_job_saying_why(
    client: Client, spec: dict[str, Any], said: str
) -> None:
    job = await _claimed(client, "echo", [])
    with pytest.raises(HandOutFailed, match=said):
        await HandOut(lambda: client)(job, spec)


async def test_a_join_between_two_groups_passes_every_result_on(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    tmp_path: Path,
) -> None:
    """Between a group of 6 and a group of 6, one join (6 + 6 dependencies, not 36),
    which the daemon runs as a built-in task; each of the second group gets all six
    results, in order, as it would without the join."""
    config = daemon_config(**TASKS)
    spawn(config, {RUN_LEDGER_ENV: str(tmp_path / "ledger")}).wait_ready()
    flow = chain(group(step("child", f"a{n}", 0) for n in range(6)),
                 group(step("join", f"b{n}") for n in range(6)), pass_results=True)  # fmt: skip
    async with await Client.connect(load_settings(config, env={})) as client:
        workflow = await client.enqueue_workflow(flow)
        await eventually(lambda: all_succeeded(pg, 13), timeout=60, what="all ran")
        join_id = workflow.job_ids[6]
        doc = await client.workflow(workflow.id)
        join = await client.get(join_id)
        counts = [await client.result(i) for i in workflow.job_ids[7:]]
    assert [j["task"] for j in doc["jobs"] if j["id"] == join_id] == [":join"]
    assert all(len(j["depends_on"]) == 1 for j in doc["jobs"] if j["task"] == "join")
    assert isinstance(join.result, list) and len(join.result) == 6
    assert counts == [6] * 6
