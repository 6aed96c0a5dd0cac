"""arq's client side for the benchmark; runs under the peer venv (`--peer-python`).

Enqueues with arq's normal `enqueue_job` (each call is its own WATCH/MULTI
transaction, so calls run concurrently rather than one after another), and
reads the lateness tasks' results back. Prints one JSON object on stdout.

    python -m bench.arq_side noop --redis URL --queue Q --jobs N
    python -m bench.arq_side lateness --redis URL --queue Q --jobs N --spread S ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from arq import create_pool  # type: ignore[import-not-found]  # peer venv only
from arq.connections import RedisSettings  # type: ignore[import-not-found]  # peer venv only

CONCURRENCY = 100  # enqueue_job calls in flight at once


async def _concurrently(calls: Iterable[Awaitable[Any]]) -> None:
    """Await the calls with at most CONCURRENCY in flight (each starts when awaited)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Awaitable[Any]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(call) for call in calls))


async def enqueue_noops(args: argparse.Namespace) -> dict[str, Any]:
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    try:
        started = time.perf_counter()
        await _concurrently(
            pool.enqueue_job("noop", _queue_name=args.queue) for _ in range(args.jobs)
        )
        return {"jobs": args.jobs, "enqueue_seconds": round(time.perf_counter() - started, 3)}
    finally:
        await pool.close(close_connection_pool=True)


async def lateness(args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue jobs deferred at random, then wait for all their results (a worker runs)."""
    rng = random.Random(args.seed)
    delays = [args.offset + rng.uniform(0, args.spread) for _ in range(args.jobs)]
    pool = await create_pool(RedisSettings.from_dsn(args.redis))
    try:
        await _concurrently(
            pool.enqueue_job("lateness", _queue_name=args.queue, _defer_by=delay)
            for delay in delays
        )
        deadline = time.monotonic() + args.offset + args.spread + args.timeout
        while True:
            results = [r for r in await pool.all_job_results() if r.function == "lateness"]
            if len(results) >= args.jobs or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        return {
            "lateness_ms": [r.result for r in results if r.success],
            "failed": sum(1 for r in results if not r.success),
        }
    finally:
        await pool.close(close_connection_pool=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("noop", "lateness"):
        command = sub.add_parser(name)
        command.add_argument("--redis", required=True, help="Redis URL")
        command.add_argument("--queue", required=True)
        command.add_argument("--jobs", type=int, required=True)
    late = sub.choices["lateness"]
    late.add_argument("--spread", type=float, required=True, help="seconds")
    late.add_argument("--offset", type=float, required=True, help="seconds before the first")
    late.add_argument("--seed", type=int, required=True)
    late.add_argument("--timeout", type=float, required=True, help="seconds after the last")
    args = parser.parse_args()
    run = enqueue_noops if args.command == "noop" else lateness
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
