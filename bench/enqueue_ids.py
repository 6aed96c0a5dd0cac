"""`python -m bench.enqueue_ids`: enqueue throughput with ids the caller chose, against
generated ids, through the public Client connected to both servers as an
application's is.

A chosen id must not name a job whose history is kept. Redis answers that alone
once the retired ids were filled from the history (runner/daemon/retired_ids.py); before
that fill, each batch with chosen ids also asks PostgreSQL. Three runs of the same
jobs, each under a key prefix of its own: generated ids, chosen ids (retired ids
filled: Redis alone), and chosen ids with the fill not done (a PostgreSQL lookup per
batch), for the cost the record saves. Nothing runs the jobs: enqueue alone is timed.

    .venv/bin/python -m bench.enqueue_ids     # on private servers of its own
    make bench                                # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.servers import private_servers
from runner import Client
from runner.config.settings import Settings, TaskSettings
from runner.daemon.retired_ids import RetiredIds
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.store import PgStore

JOBS = 50_000
BATCH = 100  # jobs per enqueue_many call, as a feeder sends them
TARGET = 0.90  # chosen ids' rate (Redis alone) against generated ids'


@dataclass
class EnqueueFigures:
    jobs: int
    batch: int
    generated_per_s: float
    chosen_per_s: float
    chosen_unfilled_per_s: float

    @property
    def ratio(self) -> float:
        return self.chosen_per_s / self.generated_per_s

    def targets(self) -> dict[str, bool]:
        return {"chosen ids >= 0.9 x generated": self.ratio >= TARGET}

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3), "targets": self.targets()}


async def _rate(settings: Settings, jobs: int, chosen: bool, filled: bool) -> float:
    settings = Settings(
        redis_url=settings.redis_url, database_url=settings.database_url,
        key_prefix=f"bench-ids-{secrets.token_hex(3)}", tasks=settings.tasks, source="bench",
    )  # fmt: skip
    async with await Client.connect(settings) as client:
        if filled:
            pg = await client.history_store()
            assert pg is not None
            await RetiredIds(client.store, pg, client.clock).fill()
        made = [
            client.new_job("noop", job_id=f"order-{n}" if chosen else None) for n in range(jobs)
        ]
        started = time.perf_counter()
        for i in range(0, jobs, BATCH):
            await client.enqueue_many(made[i : i + BATCH])
        return jobs / (time.perf_counter() - started)


async def _migrate(database_url: str) -> None:
    pg = await PgStore.connect(database_url)
    try:
        await pg.migrate()
    finally:
        await pg.close()


def measure(servers: EmbeddedServers, jobs: int = JOBS) -> EnqueueFigures:
    asyncio.run(_migrate(servers.database_url))
    noop = TaskSettings(name="noop", target="bench.tasks:noop", kind="async")
    base = Settings(
        redis_url=servers.redis_url, database_url=servers.database_url,
        tasks={"noop": noop}, source="bench",
    )  # fmt: skip
    print(f"measuring enqueue with chosen and generated ids ({jobs:,} jobs each) ...", flush=True)
    return EnqueueFigures(
        jobs=jobs, batch=BATCH,
        generated_per_s=round(asyncio.run(_rate(base, jobs, chosen=False, filled=True))),
        chosen_per_s=round(asyncio.run(_rate(base, jobs, chosen=True, filled=True))),
        chosen_unfilled_per_s=round(asyncio.run(_rate(base, jobs, chosen=True, filled=False))),
    )  # fmt: skip


def render(figures: EnqueueFigures) -> str:
    return "\n".join([
        f"enqueue ({figures.jobs:,} jobs, {figures.batch} a call, Client with both servers)",
        f"  generated ids              {figures.generated_per_s:>9,.0f} jobs/s",
        f"  chosen ids (Redis alone)   {figures.chosen_per_s:>9,.0f} jobs/s"
        f"   {figures.ratio:.2f}x generated (target >= {TARGET})",
        f"  chosen ids, asking Postgres {figures.chosen_unfilled_per_s:>8,.0f} jobs/s"
        "   (before the retired ids are filled)",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue_ids", description=__doc__)
    parser.add_argument("--jobs", type=int, default=JOBS)
    args = parser.parse_args(argv)
    with private_servers("enqueue-ids") as (servers, _):
        figures = measure(servers, args.jobs)
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
