"""`python -m bench.source_ingest`: how fast a stream source turns messages into jobs,
beside the client's own `enqueue_many` on the same servers.

Both sides do the same work per job: build it from its parts (the client's
`new_job`: checks, JSON) and enqueue it in batches of BATCH. The source side reads
the messages from a stream filled beforehand (XREADGROUP), maps each (JSON args,
an id from the stream and the entry), enqueues with those chosen ids, acknowledges
and counts: one daemon's sources service, in-process, timed from its start until
every message was accepted. The client side enqueues the same number of jobs with
generated ids. Nothing runs the jobs: ingest alone is timed. The retired ids are
filled first, as a running daemon does, so chosen ids are judged by Redis alone.

    .venv/bin/python -m bench.source_ingest     # on private servers of its own
    make bench                                  # with every other figure
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import uvloop

from bench.servers import private_servers
from runner import Client
from runner.clock import SYSTEM_CLOCK
from runner.config.settings import Settings, TaskSettings
from runner.config.sources import SourceSettings
from runner.daemon.retired_ids import RetiredIds
from runner.servers.embedded import EmbeddedServers
from runner.sources.service import SourcesService
from runner.store import PgStore, RedisStore, read_source_figures

JOBS = 50_000
BATCH = 500  # messages per read, and jobs per enqueue_many call
TARGET = 0.80  # the source's rate against enqueue_many's


@dataclass
class IngestFigures:
    jobs: int
    batch: int
    enqueue_many_per_s: float
    stream_source_per_s: float

    @property
    def ratio(self) -> float:
        return self.stream_source_per_s / self.enqueue_many_per_s

    def targets(self) -> dict[str, bool]:
        return {"stream source >= 0.8 x enqueue_many": self.ratio >= TARGET}

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 3), "targets": self.targets()}


def _settings(base: Settings) -> Settings:
    return replace(base, key_prefix=f"bench-src-{secrets.token_hex(3)}")


async def _client_rate(base: Settings, jobs: int) -> float:
    async with await Client.connect(_settings(base)) as client:
        started = time.perf_counter()
        for i in range(0, jobs, BATCH):
            made = [client.new_job("noop", [n]) for n in range(i, min(i + BATCH, jobs))]
            await client.enqueue_many(made)
        return jobs / (time.perf_counter() - started)


async def _fill(redis: Any, stream: str, jobs: int) -> None:
    for i in range(0, jobs, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(i, min(i + 5000, jobs)):
                pipe.xadd(stream, {"args": f"[{n}]"})
            await pipe.execute()


async def _source_rate(base: Settings, jobs: int) -> float:
    settings = _settings(base)
    url = settings.redis_url
    assert url is not None
    stream = f"{{{settings.key_prefix}}}:orders"
    source = SourceSettings(name="orders", kind="redis-stream", key=stream,
                            dead_letter=f"{stream}:dl", task="noop", batch=BATCH)  # fmt: skip
    settings = replace(settings, sources={"orders": source})
    async with await Client.connect(settings) as client:
        pg = await client.history_store()
        assert pg is not None
        await RetiredIds(client.store, pg, client.clock).fill()
        await _fill(client.redis, stream, jobs)
        store = RedisStore(client.redis, client.store.keys, 60_000)
        service = SourcesService(settings, store, pg, redis_url=url,
                                 consumer="bench", clock=SYSTEM_CLOCK)  # fmt: skip
        started = time.perf_counter()
        task = asyncio.create_task(service.run())
        await _until_accepted(store, jobs)
        took = time.perf_counter() - started
        await service.stop()
        await task
        return jobs / took


async def _until_accepted(store: RedisStore, jobs: int) -> None:
    while True:
        figures = await read_source_figures(store, ["orders"], 0)
        if figures["orders"]["accepted"] >= jobs:
            return
        await asyncio.sleep(0.02)


async def _migrate(database_url: str) -> None:
    pg = await PgStore.connect(database_url)
    try:
        await pg.migrate()
    finally:
        await pg.close()


def measure(servers: EmbeddedServers, jobs: int = JOBS) -> IngestFigures:
    asyncio.run(_migrate(servers.database_url))
    noop = TaskSettings(name="noop", target="bench.tasks:noop", kind="async")
    base = Settings(
        redis_url=servers.redis_url, database_url=servers.database_url,
        tasks={"noop": noop}, source="bench",
    )  # fmt: skip
    print(f"measuring ingest from a stream source ({jobs:,} messages) ...", flush=True)
    return IngestFigures(
        jobs=jobs, batch=BATCH,
        enqueue_many_per_s=round(uvloop.run(_client_rate(base, jobs))),
        stream_source_per_s=round(uvloop.run(_source_rate(base, jobs))),
    )  # fmt: skip


def render(figures: IngestFigures) -> str:
    return "\n".join([
        f"ingest ({figures.jobs:,} jobs, {figures.batch} a batch, built and enqueued)",
        f"  client enqueue_many        {figures.enqueue_many_per_s:>9,.0f} jobs/s",
        f"  stream source              {figures.stream_source_per_s:>9,.0f} jobs/s"
        f"   {figures.ratio:.2f}x enqueue_many (target >= {TARGET})",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.source_ingest", description=__doc__)
    parser.add_argument("--jobs", type=int, default=JOBS)
    args = parser.parse_args(argv)
    with private_servers("source-ingest") as (servers, _):
        figures = measure(servers, args.jobs)
    print(render(figures))
    return 0 if all(figures.targets().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
