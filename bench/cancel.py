"""`python -m bench.cancel`: a running job cancelled from another process stops within 1 s.

A daemon (`python -m runner run`) runs on the benchmark's servers. This process,
as an operator's client would, enqueues a job that would run for a minute, waits
until Redis says it is running, calls `Client.cancel`, and times from just before
that call to the moment the daemon stopped the work, read from the daemon's own
JSON log (`ts`, ms):

- async: until the next async job starts in the slot the cancelled one held (the
  pool has one slot, so that start proves the coroutine ended);
- io: until the daemon logs the cancel. A thread cannot be stopped: it runs on,
  its result dropped. The job is `cancelled` in Redis once `cancel` returns, must
  still be once its thread has returned, and every io thread must be free again;
- cpu: one worker kept busy all along, the other running the job: until the next
  cpu job starts, on the worker that replaced the killed one (the job returns its
  pid); the pool's worker processes are counted before and after each try.

A try whose work has not stopped after STUCK_S counts as stuck (slower than any
other); the daemon is then restarted so the next tries can run. Each kind is
tried 20 times: p99 of 20 tries is the slowest one.

    .venv/bin/python -m bench.cancel          # on private servers of its own
    make bench                                # after the throughput and lateness figures
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cancel_report import CancelFigures, Timing, render
from bench.runner_daemon import LogLine, RunnerDaemon, log_time
from runner import Client
from runner.config.settings import load_settings
from runner.servers.embedded import EmbeddedServers

TRIES = 20
LONG_S = 60.0  # how long the cancelled jobs would run
IO_SLEEP_S = 3.0  # an io job's thread runs on after the cancel: short, then checked
IO_THREADS = TRIES + 2  # a thread for each try, since cancelled ones run on a while
CPU_WORKERS = 2
STUCK_S = 5.0  # work not stopped this long after the request: it will not stop
WAIT_S = 30.0  # for any other step; a stuck run fails instead of hanging
CANCELLED = {"job cancelled by request", "job cancelled before it started"}


def write_config(path: Path, redis_url: str, database_url: str, log_file: Path) -> Path:
    """One async slot (a follow-up async job starts only once the cancelled one ended),
    an io thread for every try, two cpu workers."""
    sections: dict[str, dict[str, Any]] = {
        "redis": {"url": redis_url, "key_prefix": f"bench-cancel-{secrets.token_hex(3)}"},
        "postgres": {"url": database_url},
        "log": {"level": "info", "file": str(log_file), "format": "json"},
        "pools": {"async": 1, "io": IO_THREADS, "cpu": CPU_WORKERS},
        "tasks.sleep_async": {"target": "bench.tasks:sleep_async", "kind": "async"},
        "tasks.sleep_io": {"target": "bench.tasks:sleep_io", "kind": "io"},
        "tasks.burn_cpu": {"target": "bench.tasks:burn_cpu", "kind": "cpu"},
        "tasks.noop": {"target": "bench.tasks:noop", "kind": "async"},
    }
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cpu_worker_pids(daemon_pid: int) -> set[int]:
    """The daemon's cpu workers: the live children of its children (multiprocessing's
    forkserver, a child of the daemon, forks every worker)."""
    procs: dict[int, tuple[int, str]] = {}  # pid: (parent pid, state)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry)] = (int(fields[1]), fields[0])
    children = {pid for pid, (parent, _) in procs.items() if parent == daemon_pid}
    return {pid for pid, (parent, state) in procs.items() if parent in children and state != "Z"}


@dataclass
class KindRun:
    logged: list[float | None] = field(default_factory=list)
    stopped: list[float | None] = field(default_factory=list)
    early: int = 0


class CancelBench:
    """The daemon under test (restarted after a stuck try), its log, and a client."""

    def __init__(self, client: Client, config: Path, log_file: Path, folder: Path) -> None:
        self.client = client
        self.config = config
        self.log_file = log_file
        self.folder = folder
        self.lines: list[LogLine] = []
        self._offset = 0
        self._partial = b""
        self.daemons = contextlib.ExitStack()
        self.daemon: RunnerDaemon | None = None
        self.restarts = 0

    def _read(self) -> None:
        """The log lines written since the last read (the daemon flushes every 100 ms)."""
        if not self.log_file.exists():
            return
        with self.log_file.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        self._offset += len(data)
        *whole, self._partial = (self._partial + data).split(b"\n")
        self.lines += [json.loads(raw) for raw in whole if raw.strip()]

    async def line(
        self, events: set[str], job_id: str | None, timeout: float = WAIT_S, after: int = 0
    ) -> LogLine:
        """The first line, from line `after` on, of one of `events` for `job_id`."""
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for line in self.lines[seen:]:
                if line.get("event") in events and line.get("job_id") == job_id:
                    return line
            seen = len(self.lines)
            if (
                self.daemon is None
                or self.daemon.proc is None
                or self.daemon.proc.poll() is not None
            ):
                raise RuntimeError(f"the daemon exited; see {self.daemon and self.daemon.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the daemon did not log {events} for {job_id} in {timeout}s")
            await asyncio.sleep(0.01)
            self._read()

    async def start_daemon(self) -> None:
        self._read()
        mark = len(self.lines)
        output = self.folder / f"runner-cancel-{self.restarts + 1}.out"
        self.daemon = self.daemons.enter_context(RunnerDaemon(self.config, self.log_file, output))
        await self.line({"daemon ready"}, None, after=mark)

    def stop_daemon(self) -> None:
        assert self.daemon is not None
        if (code := self.daemon.stop(WAIT_S)) != 0:
            raise RuntimeError(f"runner daemon exited with {code}; see {self.daemon.output}")

    async def restart(self) -> None:
        self.stop_daemon()
        self.restarts += 1
        await self.start_daemon()

    def pid(self) -> int:
        assert self.daemon is not None and self.daemon.proc is not None
        return self.daemon.proc.pid

    async def start(self, task: str, seconds: float) -> str:
        """Enqueue a job; return once Redis says it is running."""
        job_id = await self.client.enqueue(task, [seconds])
        deadline = time.monotonic() + WAIT_S
        while (await self.client.store.job_states([job_id])).get(job_id) != "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not start within {WAIT_S}s")
            await asyncio.sleep(0.002)
        return job_id

    async def cancel(self, job_id: str) -> float:
        """Cancel the job; when the request was made (epoch seconds)."""
        asked = time.time()
        if (state := await self.client.cancel(job_id)) != "cancelled":
            raise RuntimeError(f"cancel of {job_id} left it {state}")
        return asked

    async def since(self, asked: float, events: set[str], job_id: str) -> float | None:
        """Milliseconds from `asked` to the daemon's line for `job_id`; None if there is
        none within STUCK_S."""
        try:
            line = await self.line(events, job_id, timeout=STUCK_S)
        except TimeoutError:
            return None
        # The log's times are whole ms (cut, not rounded): so is the request's here.
        return float(round(log_time(line) * 1000) - math.floor(asked * 1000))

    async def logged(self, run: KindRun, asked: float, job_id: str) -> None:
        run.logged.append(await self.since(asked, CANCELLED, job_id))
        started = any(
            line.get("event") == "job started" and line.get("job_id") == job_id
            for line in self.lines
        )
        run.early += not started

    async def workers(self) -> set[int]:
        """The cpu workers once CPU_WORKERS are up (a killed one may take a moment to
        go, its replacement to come); what is there after a second, if not."""
        deadline = time.monotonic() + 1.0
        while len(pids := cpu_worker_pids(self.pid())) != CPU_WORKERS:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        return pids


async def _async_tries(bench: CancelBench, tries: int) -> KindRun:
    run = KindRun()
    for _ in range(tries):
        job_id = await bench.start("sleep_async", LONG_S)
        follower = await bench.client.enqueue("noop")  # waits: the one slot is taken
        asked = await bench.cancel(job_id)
        await bench.logged(run, asked, job_id)
        run.stopped.append(await bench.since(asked, {"job started"}, follower))
        if run.stopped[-1] is None:
            await bench.restart()  # the slot will not come back: the follower runs there
        await bench.client.wait(follower, timeout=WAIT_S, poll=0.01)
    return run


async def _io_tries(
    bench: CancelBench, tries: int
) -> tuple[KindRun, list[float | None], list[str]]:
    run = KindRun()
    returned: list[float | None] = []
    ids: list[str] = []
    for _ in range(tries):
        job_id = await bench.start("sleep_io", IO_SLEEP_S)
        asked = await bench.cancel(job_id)
        returned.append((time.time() - asked) * 1000)
        await bench.logged(run, asked, job_id)
        ids.append(job_id)
    return run, returned, ids


async def _io_aftermath(bench: CancelBench, ids: list[str], returned_by: float) -> tuple[int, int]:
    """Once the cancelled jobs' threads have returned (by `returned_by`, monotonic): how
    many jobs are still `cancelled` with no outcome logged, and how many io jobs can
    start at once."""
    await asyncio.sleep(max(0.0, returned_by - time.monotonic()))
    states = await bench.client.store.job_states(ids)
    bench._read()
    ended = {
        line.get("job_id")
        for line in bench.lines
        if line.get("event") not in (*CANCELLED, "job started")
    }
    dropped = sum(1 for i in ids if states.get(i) == "cancelled" and i not in ended)
    probes = [await bench.client.enqueue("sleep_io", [1.0]) for _ in range(IO_THREADS)]
    await asyncio.sleep(0.5)
    running = await bench.client.store.job_states(probes)
    for job_id in probes:
        await bench.client.wait(job_id, timeout=WAIT_S, poll=0.05)
    return dropped, sum(1 for state in running.values() if state == "running")


@dataclass
class CpuRun(KindRun):
    before: list[int] = field(default_factory=list)
    after: list[int] = field(default_factory=list)
    on_new_worker: int = 0


async def _cpu_tries(bench: CancelBench, tries: int) -> CpuRun:
    """One worker kept busy all along; each try starts a job on the other, enqueues a
    follower (it waits: no worker is free), and cancels the job."""
    run = CpuRun()
    keeper = await bench.start("burn_cpu", LONG_S)
    for _ in range(tries):
        job_id = await bench.start("burn_cpu", LONG_S)
        before = await bench.workers()
        follower = await bench.client.enqueue("burn_cpu", [0])
        asked = await bench.cancel(job_id)
        await bench.logged(run, asked, job_id)
        run.stopped.append(await bench.since(asked, {"job started"}, follower))
        run.before.append(len(before))
        if run.stopped[-1] is None:
            await bench.cancel(keeper)  # else the stop waits for it, then hands it back
            await bench.restart()
            keeper = await bench.start("burn_cpu", LONG_S)
        done = await bench.client.wait(follower, timeout=WAIT_S, poll=0.01)
        if done.state != "succeeded":
            raise RuntimeError(f"the follower cpu job {follower} ended {done.state}: {done.error}")
        run.on_new_worker += run.stopped[-1] is not None and done.result not in before
        run.after.append(len(await bench.workers()))
    if (await bench.client.get(keeper)).state != "running":
        raise RuntimeError(f"the cpu job kept running on the other worker ended: {keeper}")
    await bench.cancel(keeper)  # nothing left burning a core
    return run


async def _measure(bench: CancelBench, tries: int) -> CancelFigures:
    await bench.start_daemon()
    async_run = await _async_tries(bench, tries)
    io_run, io_returned, io_ids = await _io_tries(bench, tries)
    returned_by = time.monotonic() + IO_SLEEP_S + 0.5
    cpu_run = await _cpu_tries(bench, tries)
    io_dropped, io_free = await _io_aftermath(bench, io_ids, returned_by)
    bench.stop_daemon()
    return CancelFigures(
        tries=tries,
        async_logged=Timing.from_samples(async_run.logged),
        async_stopped=Timing.from_samples(async_run.stopped),
        io_cancelled=Timing.from_samples(io_returned),
        io_logged=Timing.from_samples(io_run.logged),
        cpu_logged=Timing.from_samples(cpu_run.logged),
        cpu_stopped=Timing.from_samples(cpu_run.stopped),
        cpu_workers=CPU_WORKERS,
        workers_before=cpu_run.before,
        workers_after=cpu_run.after,
        cpu_on_new_worker=cpu_run.on_new_worker,
        io_threads=IO_THREADS,
        io_dropped=io_dropped,
        io_free_threads=io_free,
        early={"async": async_run.early, "io": io_run.early, "cpu": cpu_run.early},
        stuck_after_s=STUCK_S,
        restarts=bench.restarts,
    )


def measure(redis_url: str, database_url: str, folder: Path, tries: int = TRIES) -> CancelFigures:
    """Run the daemon on these servers, cancel `tries` running jobs of each kind, stop it."""
    print(f"measuring cancel of running jobs ({tries} a kind) ...", flush=True)
    log_file = folder / "runner-cancel.log"
    config = write_config(folder / "runner-cancel.toml", redis_url, database_url, log_file)

    async def run() -> CancelFigures:
        async with await Client.connect(load_settings(config, env={})) as client:
            bench = CancelBench(client, config, log_file, folder)
            with bench.daemons:  # a daemon still running after a failure is killed
                return await _measure(bench, tries)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cancel", description=__doc__)
    parser.add_argument("--tries", type=int, default=TRIES, help="cancels per kind")
    parser.add_argument("--keep", action="store_true", help="keep the folder of logs and data")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-cancel-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    servers = EmbeddedServers(folder / "servers", durable=False)
    ok = False
    try:
        servers.start_redis()
        servers.start_postgres()
        figures = measure(servers.redis_url, servers.database_url, folder, args.tries)
        ok = True
    finally:
        servers.stop()
        if args.keep or not ok:
            print(f"logs and data kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
