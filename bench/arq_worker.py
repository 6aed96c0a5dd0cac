"""arq's worker for the benchmark; runs under the peer venv (`--peer-python`).

Tuned as bench/peer.py gives it (printed with its figures): poll every 50 ms
instead of its default 500 ms, 200 jobs at once, no results kept while draining
(burst mode). It logs through arq's own logger at info to a file, as runner logs
each job at info to a file: both sides pay for their per-job log lines. Start
and stop times go to a JSON-lines marks file: the start hook runs right before
arq's first poll, so start-up is not counted, as runner is timed from its
"daemon ready" line.

    python -m bench.arq_worker --redis URL --queue Q --log F --marks M \
        --poll-delay S --max-jobs N [--burst]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings  # type: ignore[import-not-found]  # peer venv only
from arq.worker import Worker  # type: ignore[import-not-found]  # peer venv only

from bench import late


async def noop(ctx: dict[str, Any]) -> None:
    """The throughput task: no work."""


async def lateness(ctx: dict[str, Any], due: float, path: str) -> None:
    """The lateness task: the body every system runs, against the exact due time asked
    for (not arq's queue score, that time rounded to the ms)."""
    late.record_start(due, path)


def _mark(path: Path, name: str, **extra: Any) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"mark": name, "t": time.time(), **extra}) + "\n")


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s: %(message)s"))  # arq's CLI format
    logger = logging.getLogger("arq")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", required=True, help="Redis URL")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--marks", type=Path, required=True)
    parser.add_argument("--poll-delay", type=float, required=True, help="seconds")
    parser.add_argument("--max-jobs", type=int, required=True, help="jobs run at once")
    parser.add_argument("--burst", action="store_true", help="drain the queue, keep no results")
    args = parser.parse_args()
    _log_to(args.log)
    marks: Path = args.marks

    async def started(ctx: dict[str, Any]) -> None:
        _mark(marks, "started")

    async def stopped(ctx: dict[str, Any]) -> None:  # after every job task has ended
        _mark(marks, "stopped", complete=worker.jobs_complete, failed=worker.jobs_failed)

    # arq's Worker takes the current loop at construction; give it a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = Worker(
        functions=[noop, lateness],
        queue_name=args.queue,
        redis_settings=RedisSettings.from_dsn(args.redis),
        burst=args.burst,
        poll_delay=args.poll_delay,
        max_jobs=args.max_jobs,
        keep_result=0 if args.burst else 3600,  # 3600: arq's default
        on_startup=started,
        on_shutdown=stopped,
    )
    worker.run()


if __name__ == "__main__":
    main()
