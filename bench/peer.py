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

from bench.plan import Plan
from bench.runner_daemon import REPO
from bench.stats import Lateness, Throughput


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
            "--marks", str(marks), *(["--burst"] if burst else []),
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
        proc, marks_file = self._worker("lateness", queue, burst=False)
        try:
            _wait_for_mark(proc, marks_file, "started", timeout)
            found = self._side(
                "lateness", "--redis", self.redis_url, "--queue", queue, "--jobs", count,
                "--spread", plan.spread_s, "--offset", plan.offset_s, "--seed", plan.seed,
                "--timeout", timeout,
            )  # fmt: skip
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        finally:
            _kill(proc)
        samples: list[float] = found["lateness_ms"]
        if len(samples) != count or found["failed"]:
            raise RuntimeError(f"arq: {len(samples)} results, {found['failed']} failed")
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
