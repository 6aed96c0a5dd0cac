"""Huey's side of the benchmark; runs under the peer venv (`--peer-python`).

The consumer is Huey's own (`huey_consumer`) on Redis, results off, with the
workers bench/queue_peers.py gives it (4 processes: its fastest here):

    BENCH_REDIS=URL BENCH_QUEUE=Q BENCH_MARKS=M python -m huey.bin.huey_consumer \
        bench.huey_app.huey --workers 4 --worker-type process --no-periodic
    python -m bench.huey_app enqueue --jobs N            # same environment
    python -m bench.huey_app enqueue --jobs N --delay S  # all due in S seconds
    python -m bench.huey_app late --jobs N --spread S --offset O --seed X --path P

Each worker appends a "booted" mark (JSON line, wall time) from its startup hook;
the harness watches the queue's list empty.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from huey import RedisHuey  # type: ignore[import-not-found]  # peer venv only

from bench import late, work

huey = RedisHuey(
    os.environ.get("BENCH_QUEUE", "bench"),
    url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"),
    results=False,
)


@huey.on_startup()  # type: ignore[untyped-decorator]  # peer venv only
def booted() -> None:
    path = os.environ.get("BENCH_MARKS")
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps({"mark": "booted", "t": time.time(), "pid": os.getpid()}))
            file.write("\n")


@huey.task()  # type: ignore[untyped-decorator]  # peer venv only
def noop() -> None:
    """The throughput task: no work."""


@huey.task()  # type: ignore[untyped-decorator]  # peer venv only
def io_job(seconds: float, path: str) -> None:
    work.blocking_io(seconds, path)


@huey.task()  # type: ignore[untyped-decorator]  # peer venv only
def cpu_job(seconds: float, path: str) -> None:
    work.cpu_burn(seconds, path)


@huey.task()  # type: ignore[untyped-decorator]  # peer venv only
def late_job(due: float, path: str) -> None:
    late.record_start(due, path)


def _send(task: Any, args: list[Any], delay_s: float | None) -> None:
    if delay_s is None:
        task(*args)
    else:  # its due time: its own clock (UTC, to the microsecond) plus the delay
        task.schedule(args=args, delay=delay_s)


def enqueue(argv: list[str]) -> dict[str, Any]:
    tasks = {"noop": noop, "io": io_job, "cpu": cpu_job}
    return work.enqueue_timed(argv, lambda task, args, delay: _send(tasks[task], args, delay))


def enqueue_late(argv: list[str]) -> dict[str, Any]:
    return late.enqueue_delayed(argv, lambda delay, args: _send(late_job, args, delay))


if __name__ == "__main__" and sys.argv[1:2] in (["enqueue"], ["late"]):
    # Through the module's own name: a task enqueued from __main__ would be named
    # "__main__.noop", which the consumer's registry does not know.
    from bench import huey_app  # noqa: PLW0406  # the module itself, under its name

    run = huey_app.enqueue if sys.argv[1] == "enqueue" else huey_app.enqueue_late
    print(json.dumps(run(sys.argv[2:])))
