"""What a daemon leaves behind when it ends badly: a stop with a thread still held or
a second stop signal (the process leaves with os._exit), and a SIGKILL mid cpu job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from runner.store.redis.keys import Keys
from tests.daemon.process import DaemonProcess, cli
from tests.waiting import eventually


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """An empty TMPDIR of its own with a short path: the forkserver's socket lives in
    it, and an AF_UNIX path has at most 107 bytes (a worker's tmp_path can be longer)."""
    folder = Path(tempfile.mkdtemp(prefix="rt-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


LEASE_S = 3.0


def _children() -> dict[int, list[int]]:
    """Every live process's children, read from /proc (a zombie counts as gone)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            tree.setdefault(int(parent), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (neither gone nor a zombie)."""
    running = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            running.add(pid)
    return running


def _enqueue(config: Path, task: str, *args: object) -> str:
    done = cli("enqueue", task, "--args", json.dumps(list(args)), "--json", config=config)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


async def test_a_stop_with_a_thread_held_removes_the_daemons_temporary_folder(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], short_tmp: Path
) -> None:
    """An io job still in its thread when the grace runs out makes the daemon leave with
    os._exit, past the interpreter's exit hooks: the folder multiprocessing made in
    TMPDIR for the cpu pool's forkserver (pymp-*) is removed all the same."""
    tmp = short_tmp
    config = daemon_config(daemon={"shutdown_grace": "1s"})
    daemon = spawn(config, env={"TMPDIR": str(tmp)})
    daemon.wait_ready()
    assert [p.name for p in tmp.glob("pymp-*")], "the forkserver's folder should exist"
    job_id = _enqueue(config, "sleep_io", 60)
    daemon.wait_for(lambda line: line.get("event") == "job started" and line["job_id"] == job_id)
    family = descendants(daemon.proc.pid)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert [line["job_id"] for line in daemon.events("job handed back at shutdown")] == [job_id]
    assert sorted(p.name for p in tmp.iterdir()) == []
    await eventually(lambda: not alive(family), what="the end of the forkserver and workers")


async def test_a_second_stop_signal_removes_the_daemons_temporary_folder(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], short_tmp: Path
) -> None:
    """A second SIGTERM during the grace leaves at once (os._exit(1)), and removes the
    forkserver's folder from TMPDIR first all the same."""
    tmp = short_tmp
    config = daemon_config(daemon={"shutdown_grace": "60s"})
    daemon = spawn(config, env={"TMPDIR": str(tmp)})
    daemon.wait_ready()
    job_id = _enqueue(config, "sleep_io", 60)
    daemon.wait_for(lambda line: line.get("event") == "job started" and line["job_id"] == job_id)
    daemon.signal(signal.SIGTERM)
    daemon.wait_for(lambda line: line.get("event") == "daemon stopping")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 1
    assert daemon.events("second stop signal: exiting at once")
    assert sorted(p.name for p in tmp.iterdir()) == []


async def test_a_killed_daemon_leaves_no_process_running_and_drops_out_of_status(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    redis: Redis,
    prefix: str,
) -> None:
    """SIGKILL mid cpu job: the busy worker, the idle one, the forkserver and the resource
    tracker all end within a lease, and `runner status` stops listing the daemon once its
    last heartbeat is older than a lease."""
    config = daemon_config(
        daemon={"lease_ttl": f"{LEASE_S:g}s"},
        tasks__burn_cpu={"target": "tests.tasks:burn_cpu", "kind": "cpu"},
    )
    daemon = spawn(config)
    daemon_id = daemon.wait_ready()["daemon"]
    job_id = _enqueue(config, "burn_cpu", 300)
    daemon.wait_for(lambda line: line.get("event") == "job started" and line["job_id"] == job_id)
    family = descendants(daemon.proc.pid)
    assert len(family) >= 4, f"forkserver, resource tracker and 2 workers expected: {family}"
    shown = json.loads(cli("status", "--json", config=config).stdout)
    assert daemon_id in shown["daemons"]

    daemon.signal(signal.SIGKILL)
    daemon.wait_exit()
    try:
        await eventually(
            lambda: not alive(family), timeout=LEASE_S,
            what=f"the end of the killed daemon's processes {sorted(alive(family))}",
        )  # fmt: skip
    finally:  # whatever is left would hold the daemon's stdout open for the whole job
        for pid in alive(family):
            os.kill(pid, signal.SIGKILL)

    beat = await redis.zscore(Keys(prefix).daemons, daemon_id)
    assert beat is not None  # a SIGKILL leaves it behind: status must see past it
    older_than_a_lease = beat / 1000 + LEASE_S + 0.2
    await eventually(lambda: time.time() > older_than_a_lease, timeout=2 * LEASE_S)
    shown = json.loads(cli("status", "--json", config=config).stdout)
    assert daemon_id not in shown["daemons"]
    assert daemon_id not in [d["id"] for d in shown["daemon_details"]]
