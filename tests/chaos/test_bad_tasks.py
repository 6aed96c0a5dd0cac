"""Tasks that misbehave in every way a task can, among normal jobs on several daemons.

Whatever a task raises (SystemExit and KeyboardInterrupt included, or a
CancelledError nobody asked for), however its cpu worker dies (os._exit, a
SIGKILL of its own), and whatever arguments it was given, that is the job's
failure and never the daemon's: the job ends failed with the cause named, and
arguments that do not fit the function fail at once, since no retry can help.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from tests.chaos import figures
from tests.chaos.audit import read_hashes
from tests.chaos.conftest import OpenCluster
from tests.chaos.load import LoadGenerator
from tests.chaos.profile import profile

PROFILE = profile("bad_tasks")
COPIES = max(1, PROFILE.jobs // 100)  # of each bad job


@dataclass(frozen=True)
class BadTask:
    name: str
    target: str
    kind: str
    args: tuple[int, ...]
    names: tuple[str, ...]  # the error must name one of these
    attempts: tuple[int, ...]  # how many attempts it may have had when it failed


def _bad_tasks() -> list[BadTask]:
    raised = (
        ("raise_exception", ("ValueError",)),
        ("system_exit", ("SystemExit",)),
        ("keyboard_interrupt", ("KeyboardInterrupt",)),
        ("generator_exit", ("GeneratorExit",)),
        ("cancelled_error", ("CancelledError",)),
    )
    tasks = []
    for kind in ("async", "io", "cpu"):
        suffix = "_async" if kind == "async" else ""
        for target, names in raised:
            tasks.append(BadTask(f"{target}_{kind}", target + suffix, kind, (), names, (1, 2)))
        tasks.append(
            BadTask(f"two_args_{kind}", "two_args" + suffix, kind, (1,), ("argument",), (1,))
        )
    tasks += [
        BadTask("exit_process_cpu", "exit_process", "cpu", (7,), ("exit",), (1, 2)),
        BadTask("kill_process_cpu", "kill_process", "cpu", (), ("SIGKILL", "signal 9"), (1, 2)),
    ]
    return tasks


BAD_TASKS = _bad_tasks()
CONFIG = {
    task.name: {
        "target": f"tests.chaos.tasks:{task.target}",
        "kind": task.kind,
        "timeout": "10s",
        "retries": 3 if task.name.startswith("two_args") else 1,
        "backoff": "100ms",
        "backoff_jitter": 0,
    }
    for task in BAD_TASKS
}


def _misjudged(task: BadTask, job: dict[str, str] | None) -> str | None:
    if job is None:
        return f"{task.name}: no job hash"
    state, error, attempt = job.get("state"), job.get("error", ""), int(job.get("attempt", 0))
    if state != "failed" or attempt not in task.attempts:
        return f"{task.name}: {state} at attempt {attempt} ({error[:200]!r})"
    if not any(name.lower() in error.lower() for name in task.names):
        return f"{task.name}: error does not name {' or '.join(task.names)}: {error[:300]!r}"
    return None


@pytest.mark.timeout(PROFILE.timeout)
async def test_bad_tasks_fail_their_jobs_and_stop_no_daemon(open_cluster: OpenCluster) -> None:
    """Every BaseException a task can raise, in async, io and cpu tasks, cpu workers that
    end themselves, and calls with arguments that do not fit: each job ends failed
    (after its one retry, or at once for misfit arguments) with its cause in the error;
    every daemon lives to a clean stop; the normal jobs around them pass the audit."""
    cluster = await open_cluster(daemons=PROFILE.daemons, extra_tasks=CONFIG)
    load = LoadGenerator(
        cluster.client, rate=PROFILE.rate, total=PROFILE.jobs, rng=random.Random(8)
    )

    async def enqueue_bad() -> dict[str, BadTask]:
        ids = {}
        for _ in range(COPIES):
            await asyncio.sleep(PROFILE.seconds / (COPIES + 1))
            for task in BAD_TASKS:
                ids[await cluster.client.enqueue(task.name, list(task.args))] = task
        return ids

    _, bad = await asyncio.gather(load.run(), enqueue_bad())
    verdict = await cluster.finish([*load.accepted, *bad])
    live = await read_hashes(cluster.redis, cluster.keys, list(bad))
    misjudged = [
        problem for job_id, task in bad.items() if (problem := _misjudged(task, live.get(job_id)))
    ]
    figures.record(
        "bad tasks",
        **verdict.figures(),
        bad_jobs=len(bad),
        bad_jobs_misjudged=len(misjudged),
        errors=dict(verdict.health.errors),
    )
    problems = verdict.problems()
    if misjudged:
        shown = sorted(set(misjudged))
        problems.append(f"bad jobs not failed as expected ({len(misjudged)}):\n" + "\n".join(shown))
    assert not problems, "\n\n".join(problems)
