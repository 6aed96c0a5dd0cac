"""The recorder: drains the transition stream into PostgreSQL in batches.

A batch is flushed at `batch_events` events or `flush_interval` after its first
event, whichever comes first. Entries are acknowledged (and deleted from the
stream) only after Postgres committed them; while Postgres is down the batch
is retried and nothing more is read, so Redis keeps the backlog. Entries that a
dead daemon read but never acknowledged are taken over after `reclaim_after`.
Inserts are keyed by (job id, seq), so writing an entry twice is harmless.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import asyncpg
import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runner.jobs import Event
from runner.logs import get_logger
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore

log = get_logger()

_PG_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,
)
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class Recorder:
    def __init__(
        self,
        redis_store: RedisStore,
        *,
        pg_store: PgStore,
        consumer: str,
        batch_events: int,
        flush_interval: float,
        reclaim_after: float = 30.0,
    ) -> None:
        self.redis_store = redis_store
        self.pg_store = pg_store
        self.consumer = consumer
        self.batch_events = batch_events
        self.flush_interval = flush_interval
        self.reclaim_after_ms = int(reclaim_after * 1000)
        self.recorded = 0
        self.stopping = False
        self._next_reclaim = 0.0

    async def run(self) -> None:
        """Record until asked to stop, then drain what is left.

        Stopping is a flag, not a cancellation: a blocking stream read ends by
        itself within `flush_interval`, and no batch is cut in half.
        """
        await self.redis_store.ensure_event_group()
        while not self.stopping:
            try:
                await self.record_batch(block=True)
            except _REDIS_DOWN as exc:
                log.warning("redis unavailable; recorder waiting", error=str(exc))
                await asyncio.sleep(0.5)
        await self.drain()

    async def drain(self) -> None:
        """Record everything in the stream now."""
        while await self.record_batch(block=False):
            pass

    async def record_batch(self, block: bool) -> int:
        entries = await self._collect(block)
        if not entries:
            return 0
        events = [event for _, batch in entries for event in batch]
        await self._write(events)
        await self.redis_store.ack_events([entry_id for entry_id, _ in entries])
        self.recorded += len(events)
        return len(events)

    async def _collect(self, block: bool) -> list[tuple[str, list[Event]]]:
        entries = await self._reclaim_stale()
        count = len(entries)
        deadline: float | None = None
        while count < self.batch_events:
            if deadline is None:
                wait_ms = int(self.flush_interval * 1000) if block and not entries else None
            else:
                wait_ms = int((deadline - time.monotonic()) * 1000)
                if wait_ms <= 0:
                    break
            read = await self.redis_store.read_events(
                self.consumer, self.batch_events, wait_ms if block else None
            )
            if not read:
                break  # idle: return, so the caller can notice a stop request
            entries += read
            count += sum(len(batch) for _, batch in read)
            if deadline is None:
                deadline = time.monotonic() + self.flush_interval
        return entries

    async def _reclaim_stale(self) -> list[tuple[str, list[Event]]]:
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + max(self.reclaim_after_ms / 4000, 0.5)
        stale = await self.redis_store.claim_stale_events(
            self.consumer, self.reclaim_after_ms, self.batch_events
        )
        if stale:
            log.info("took over unrecorded events of a stopped daemon", entries=len(stale))
        return stale

    async def _write(self, events: list[Event]) -> None:
        delay = 0.1
        while True:
            try:
                await self.pg_store.write_events(events)
                return
            except asyncpg.DataError as exc:
                await self._write_one_by_one(events, exc)
                return
            except _PG_DOWN as exc:
                log.warning(
                    "postgres unavailable; batch kept for retry",
                    events=len(events),
                    error=str(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _write_one_by_one(self, events: list[Event], cause: Exception) -> None:
        """A batch Postgres rejects as data (a detail that is not JSON, written to the
        stream by something other than runner's scripts) must not block the stream:
        write event by event, and record a bad event with its detail replaced."""
        log.error("postgres rejected a batch; writing it event by event", error=str(cause))
        for event in events:
            try:
                await self.pg_store.write_events([event])
            except asyncpg.DataError as exc:
                placeholder = orjson.dumps(
                    {"undecodable_detail": event.detail_json[:1000], "error": str(exc)}
                ).decode()
                log.error(
                    "event detail quarantined", job_id=event.job_id, seq=event.seq, error=str(exc)
                )
                await self.pg_store.write_events([replace(event, detail_json=placeholder)])
