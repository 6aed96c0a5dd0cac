"""The upgrade from a runner before queues, on real processes: the runner of the
last revision before queues (taken from git) migrates a database, enqueues and
runs jobs, and is SIGKILLed with jobs running; this runner then takes over the
same Redis keys and database: every job succeeds, none runs more often than the
kill explains, the old jobs read as the default queue's, and new queues work
beside them."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import signal
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from tests.conftest import _admin, _drop_database
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.real_servers import Servers
from tests.tasks import RUN_LEDGER_ENV
from tests.waiting import eventually

BEFORE_QUEUES = "8cb2151"  # the last revision before named queues
REPO = Path(__file__).resolve().parents[2]
JOBS = 200
IO_THREADS = 4  # at most this many jobs run at the kill: at most this many run twice


def _old_tree(folder: Path) -> Path:
    """The old revision's runner, with the test tasks it runs."""
    archive = subprocess.run(
        ["git", "archive", BEFORE_QUEUES, "runner", "tests/__init__.py", "tests/tasks.py",
         "tests/ledger.py"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


OLD_ENQUEUE = """
import asyncio, json, sys
from runner import Client
from pathlib import Path
from runner.config.settings import load_settings

async def main():
    async with await Client.connect(load_settings(Path(sys.argv[1]))) as client:
        count = int(sys.argv[2])
        jobs = [client.new_job("noted", [f"old-{n}", 30], job_id=f"old-{n}") for n in range(count)]
        jobs += [client.new_job("noted", ["late", 1], job_id="late", delay=4)]
        await client.enqueue_many(jobs)

asyncio.run(main())
"""


async def _empty_database(servers: Servers) -> str:
    """A database no runner migrated yet: the old runner makes its tables."""
    name = f"upgrade_{secrets.token_hex(4)}"
    admin = await _admin(servers)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return name


async def _old_enqueue(old: Path, config: Path) -> None:
    """The jobs, enqueued by the old runner's client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OLD_ENQUEUE, str(config), str(JOBS), cwd=old, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")


def _runs(ledger: Path) -> Counter[str]:
    text = ledger.read_text() if ledger.exists() else ""
    return Counter(line.split()[0] for line in text.splitlines())


async def test_a_runner_from_before_queues_hands_its_jobs_over(
    servers: Servers, prefix: str, tmp_path: Path, spawn: Callable[..., DaemonProcess],
    make_settings: Callable[..., Settings],
) -> None:  # fmt: skip
    old = _old_tree(tmp_path / "before")
    name = await _empty_database(servers)
    try:
        await _hand_over(servers, servers.database_url(name), prefix, tmp_path, spawn,
                         make_settings, old)  # fmt: skip
    finally:
        await _drop_database(servers, name)


async def _hand_over(
    servers: Servers, database_url: str, prefix: str, tmp_path: Path,
    spawn: Callable[..., DaemonProcess], make_settings: Callable[..., Settings], old: Path,
) -> None:  # fmt: skip
    ledger = tmp_path / "ledger"
    config = daemon_config_file(
        tmp_path / "runner.toml", servers.redis_url, database_url, prefix,
        pools={"io": IO_THREADS},
        tasks__noted={"target": "tests.tasks:noted_sleep_io", "kind": "io", "retries": 2},
    )  # fmt: skip
    env = {RUN_LEDGER_ENV: str(ledger)}
    before = DaemonProcess(config, env=env, cwd=old)
    try:
        before.wait_ready()
        await _old_enqueue(old, config)
        await eventually(lambda: sum(_runs(ledger).values()) >= JOBS // 3, timeout=30,
                         what="the old runner running jobs")  # fmt: skip
        before.signal(signal.SIGKILL)
        before.wait_exit()
    finally:
        before.stop()
    after = spawn(config, env)
    after.wait_ready()
    pg = await PgStore.connect(database_url)
    settings = make_settings(database_url=database_url)
    client = await Client.connect(settings)
    try:
        new = await client.enqueue("echo", ["new"], queue="mail")
        assert await client.result(new, timeout=20) == {"args": ["new"], "kwargs": {}}
        ids = [f"old-{n}" for n in range(JOBS)] + ["late"]
        for job_id in ids:
            job = await client.wait(job_id, timeout=30)
            assert (job.state, job.queue) == ("succeeded", "default"), job_id
        runs = _runs(ledger)
        assert all(runs[i] >= 1 for i in ids)
        assert sum(runs[i] - 1 for i in ids) <= IO_THREADS  # only those cut short ran twice
        applied = await pg.pool.fetch("SELECT name FROM runner_schema_migrations ORDER BY 1")
        assert {"007_queues.sql", "008_queue_listing.sql"} <= {r["name"] for r in applied}
        row = await pg.get_job("old-0")
        assert row is not None and row["queue"] == "default"
    finally:
        await client.close()
        await pg.close()
