"""arq's client side for the benchmark; runs under the peer venv (`--peer-python`).

Enqueues with arq's normal `enqueue_job` (each call is its own WATCH/MULTI
transaction, so calls run concurrently rather than one after another). Prints
one JSON object on stdout.

    python -m bench.arq_side noop --redis URL --queue Q --jobs N [--delay S]
    python -m bench.arq_side lateness --redis URL --queue Q --jobs N --spread S ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any

from arq import create_pool  # type: ignore[import-not-found]  # peer venv only
from arq.connections import RedisSettings  # type: ignore[import-not-found]  # peer venv only

from bench.plan import delays

CONCURRENCY = 100  # enqueue_job calls in flight at once


async def _concurrently(calls: Iterable[Awaitable[Any]]) -> None:
    """Await the calls with at most CONCURRENCY in flight (each starts when awaited)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[Any]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(call) for call in calls))


async def enqueue_noops(args: argparse.Namespace) -> dict[str, Any]:
    """No-op jobs, due now or all deferred by `--delay` seconds (the Redis memory figure)."""
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    try:
        started = time.perf_counter()
        await _concurrently(
            pool.enqueue_job("noop", _queue_name=args.queue, _defer_by=args.delay)
            for _ in range(args.jobs)
        )
        return {"jobs": args.jobs, "enqueue_seconds": round(time.perf_counter() - started, 3)}
    finally:
        await pool.close(close_connection_pool=True)


async def lateness(args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue jobs deferred at random (the plan's delays); a worker already runs.

    Each job is deferred with `_defer_until`, the exact due time read off the
    clock when its call starts: with `_defer_by`, arq reads its clock only after
    two round trips, which under 100 calls in flight would count arq's own enqueue
    time as lateness. arq rounds the time to its whole-ms queue score.
    """
    pool = await create_pool(RedisSettings.from_dsn(args.redis))

    async def one(delay: float) -> None:
        due = time.time() + delay
        until = datetime.fromtimestamp(due, tz=UTC)
        await pool.enqueue_job("lateness", due, args.path, _queue_name=args.queue,
                               _defer_until=until)  # fmt: skip

    try:
        started = time.perf_counter()
        await _concurrently(one(d) for d in delays(args.jobs, args.spread, args.offset, args.seed))
        return {"jobs": args.jobs, "enqueue_seconds": round(time.perf_counter() - started, 3)}
    finally:
        await pool.close(close_connection_pool=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    runs = {"noop": enqueue_noops, "lateness": lateness}
    for name in runs:
        command = sub.add_parser(name)
        command.add_argument("--redis", required=True, help="Redis URL")
        command.add_argument("--queue", required=True)
        command.add_argument("--jobs", type=int, required=True)
    late = sub.choices["lateness"]
    late.add_argument("--spread", type=float, required=True, help="seconds")
    late.add_argument("--offset", type=float, required=True, help="seconds before the first")
    late.add_argument("--seed", type=int, required=True)
    late.add_argument("--path", required=True, help="where the bodies record their start")
    sub.choices["noop"].add_argument("--delay", type=float, help="seconds (default: due now)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(runs[args.command](args))))


if __name__ == "__main__":
    main()
