"""Dramatiq's side of the benchmark; runs under the peer venv (`--peer-python`).

The worker is Dramatiq's own CLI with its defaults (one process per CPU, eight
threads each) on the Redis broker, the settings its documentation recommends:

    BENCH_REDIS=URL BENCH_QUEUE=Q BENCH_MARKS=M python -m dramatiq bench.dramatiq_app
    python -m bench.dramatiq_app enqueue --jobs N        # same environment
    python -m bench.dramatiq_app enqueue --jobs N --delay S    # all due in S seconds
    python -m bench.dramatiq_app late --jobs N --spread S --offset O --seed X --path P

Each worker process appends a "booted" mark (JSON line, wall time) once it is up,
so the harness times from the moment every process is serving, as runner is timed
from its "daemon ready" line. No results are stored: the harness watches the
queue's message hash empty.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import dramatiq  # type: ignore[import-not-found]  # peer venv only
from dramatiq.brokers.redis import RedisBroker  # type: ignore[import-not-found]  # peer venv only
from dramatiq.middleware import Middleware  # type: ignore[import-not-found]  # peer venv only

from bench import late, work

QUEUE = os.environ.get("BENCH_QUEUE", "bench")


class Marks(Middleware):  # type: ignore[misc]  # untyped base from the peer venv
    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        path = os.environ.get("BENCH_MARKS")
        if path:
            with open(path, "a", encoding="utf-8") as file:
                file.write(json.dumps({"mark": "booted", "t": time.time(), "pid": os.getpid()}))
                file.write("\n")


broker = RedisBroker(url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"))
broker.add_middleware(Marks())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]  # peer venv only
def noop() -> None:
    """The throughput task: no work."""


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]  # peer venv only
def io_job(seconds: float, path: str) -> None:
    work.blocking_io(seconds, path)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]  # peer venv only
def cpu_job(seconds: float, path: str) -> None:
    work.cpu_burn(seconds, path)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]  # peer venv only
def late_job(due: float, path: str) -> None:
    late.record_start(due, path)


def _send(actor: Any, args: list[Any], delay_s: float | None) -> None:
    if delay_s is None:
        actor.send(*args)
    else:  # Dramatiq's delay is in ms
        actor.send_with_options(args=args, delay=delay_s * 1000)


def enqueue(argv: list[str]) -> dict[str, Any]:
    actors = {"noop": noop, "io": io_job, "cpu": cpu_job}
    return work.enqueue_timed(argv, lambda task, args, delay: _send(actors[task], args, delay))


def enqueue_late(argv: list[str]) -> dict[str, Any]:
    """Dramatiq's delay is in ms; given unrounded, its due time is its own clock's whole
    ms (rounded down) plus the delay."""
    return late.enqueue_delayed(argv, lambda delay, args: _send(late_job, args, delay))


if __name__ == "__main__" and sys.argv[1:2] in (["enqueue"], ["late"]):
    run = enqueue if sys.argv[1] == "enqueue" else enqueue_late
    print(json.dumps(run(sys.argv[2:])))
