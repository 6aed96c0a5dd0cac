"""Routing on real daemon processes: a daemon claims only from the queues its config
lists (`[daemon] queues`), and one that lists none serves every queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from tests.daemon.process import DaemonProcess
from tests.waiting import eventually

PER_QUEUE = 2500


def _started(daemon: DaemonProcess) -> list[str]:
    return [line["job_id"] for line in daemon.events("job started")]


async def test_a_daemon_never_runs_a_job_of_a_queue_it_does_not_serve(
    client: Client,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    """5,000 jobs, half in `default`, half in `reports`, and two daemons that serve
    one queue each: each job starts once, on the daemon of its queue."""
    reports = spawn(daemon_config(daemon={"queues": {"reports": 1}}))
    reports.wait_ready()  # it has read the file, which the next config replaces
    default = spawn(daemon_config(daemon={"queues": {"default": 1}}))
    default.wait_ready()
    ids: dict[str, set[str]] = {}
    for queue in ("default", "reports"):
        jobs = [client.new_job("echo", [i], queue=queue) for i in range(PER_QUEUE)]
        ids[queue] = set(await client.enqueue_many(jobs))

    def all_started() -> bool:
        return len(_started(reports)) + len(_started(default)) >= 2 * PER_QUEUE

    await eventually(all_started, timeout=60, what="every job starting")
    await asyncio.sleep(0.5)  # a job started twice would show up by now
    on_reports, on_default = Counter(_started(reports)), Counter(_started(default))
    assert set(on_reports) == ids["reports"] and set(on_default) == ids["default"]
    assert max(on_reports.values()) == max(on_default.values()) == 1


async def test_a_daemon_without_a_list_serves_a_queue_made_after_it_started(
    client: Client,
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
) -> None:
    daemon = spawn(daemon_config())
    daemon.wait_ready()
    job_id = await client.enqueue("echo", ["x"], queue="brand-new")
    assert await client.result(job_id, timeout=10) == {"args": ["x"], "kwargs": {}}
    assert (await client.get(job_id)).queue == "brand-new"
