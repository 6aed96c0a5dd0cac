"""arq's side as seen from the project's venv: its scripts run under the peer venv.

arq pins redis<6 and runner needs a newer redis, so arq never loads in this
process: `bench.arq_side` (enqueue, read results) and `bench.arq_worker` run
as subprocesses of `--peer-python`, and report back in JSON.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import late
from bench.plan import Plan
from bench.runner_daemon import REPO
from bench.stats import Lateness, Throughput

POLL_DELAY_S = 0.05  # arq's default is 0.5 s: a due job waits up to that for a poll
MAX_JOBS = 200
SETTINGS = f"poll_delay {POLL_DELAY_S * 1000:g} ms (its default 500 ms), max_jobs {MAX_JOBS}"


@dataclass(frozen=True)
class Peer:
    python: Path
    redis_url: str
    folder: Path

    def _side(self, *args: str | int | float) -> dict[str, Any]:
        done = subprocess.run(
            [str(self.python), "-m", "bench.arq_side", *map(str, args)],
            capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"bench.arq_side {args[0]} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def _worker(self, phase: str, queue: str, burst: bool) -> tuple[subprocess.Popen[bytes], Path]:
        marks = self.folder / f"arq-{phase}.marks"
        output = self.folder / f"arq-{phase}.out"
        command = [
            str(self.python), "-m", "bench.arq_worker", "--redis", self.redis_url,
            "--queue", queue, "--log", str(self.folder / f"arq-{phase}.log"),
            "--marks", str(marks), "--poll-delay", str(POLL_DELAY_S), "--max-jobs", str(MAX_JOBS),
            *(["--burst"] if burst else []),
        ]  # fmt: skip
        with output.open("wb") as out:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        return proc, marks

    def throughput(self, plan: Plan) -> Throughput:
        """Enqueue `plan.jobs` no-op jobs, then time one burst-mode worker draining them."""
        count = plan.jobs
        queue = f"bench-throughput-{secrets.token_hex(3)}"
        enqueued = self._side("noop", "--redis", self.redis_url, "--queue", queue, "--jobs", count)
        proc, marks_file = self._worker("throughput", queue, burst=True)
        try:
            code = proc.wait(plan.timeout_s * 5)  # arq is the slower side
        finally:
            _kill(proc)
        marks = _read_marks(marks_file)
        stopped = marks.get("stopped", {})
        if code != 0 or stopped.get("complete") != count or stopped.get("failed"):
            raise RuntimeError(f"arq worker: exit {code}, marks {marks} for {count} jobs")
        return Throughput(
            jobs=count,
            seconds=stopped["t"] - marks["started"]["t"],
            enqueue_seconds=enqueued["enqueue_seconds"],
        )

    def lateness(self, plan: Plan) -> Lateness:
        """Deferred jobs on a worker that runs as in production, stopped by SIGTERM after."""
        count, timeout = plan.late_jobs, plan.timeout_s
        queue = f"bench-lateness-{secrets.token_hex(3)}"
        bodies = str(self.folder / "late-arq.txt")
        proc, marks_file = self._worker("lateness", queue, burst=False)
        try:
            _wait_for_mark(proc, marks_file, "started", timeout)
            self._side("lateness", "--redis", self.redis_url, "--queue", queue,
                       *plan.late_options(), "--path", bodies)  # fmt: skip
            late.wait_recorded(bodies, count, plan.offset_s + plan.spread_s + timeout)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        finally:
            _kill(proc)
        samples = late.samples_ms(bodies)
        if len(samples) != count:
            raise RuntimeError(f"arq: {len(samples)} delayed jobs started, not {count}")
        return Lateness.from_samples(samples)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _read_marks(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {mark["mark"]: mark for mark in map(json.loads, lines)}


def _wait_for_mark(proc: subprocess.Popen[bytes], path: Path, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while name not in _read_marks(path):
        if proc.poll() is not None:
            raise RuntimeError(f"the arq worker exited early ({proc.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the arq worker did not start within {timeout}s")
        time.sleep(0.05)
