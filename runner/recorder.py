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
from typing import Any

import asyncpg
import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runner.logs import get_logger
from runner.store.pg_store import PgStore
from runner.store.redis_store import RedisStore, StreamEntry

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
        # Everything this consumer read is acknowledged: leave the group tidy.
        await self.redis_store.forget_consumer(self.consumer)

    async def drain(self) -> None:
        """Record everything in the stream now."""
        while await self.record_batch(block=False):
            pass

    async def record_batch(self, block: bool) -> int:
        entries = await self._collect(block)
        if not entries:
            return 0
        payloads = [payload for _, payload in entries]
        await self._write(payloads)
        await self.redis_store.ack_events([entry_id for entry_id, _ in entries])
        count = sum(map(count_events, payloads))
        self.recorded += count
        return count

    async def _collect(self, block: bool) -> list[StreamEntry]:
        entries = await self._reclaim_stale()
        count = sum(map(count_events, (payload for _, payload in entries)))
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
            count += sum(map(count_events, (payload for _, payload in read)))
            if deadline is None:
                deadline = time.monotonic() + self.flush_interval
        return entries

    async def _reclaim_stale(self) -> list[StreamEntry]:
        if time.monotonic() < self._next_reclaim:
            return []
        self._next_reclaim = time.monotonic() + max(self.reclaim_after_ms / 4000, 0.5)
        stale = await self.redis_store.claim_stale_events(
            self.consumer, self.reclaim_after_ms, self.batch_events
        )
        if stale:
            log.info("took over unrecorded events of a stopped daemon", entries=len(stale))
        return stale

    async def _write(self, payloads: list[str]) -> None:
        delay = 0.1
        while True:
            try:
                await self.pg_store.write_events(payloads)
                return
            except asyncpg.DataError as exc:
                await self._write_one_by_one(payloads, exc)
                return
            except _PG_DOWN as exc:
                log.warning(
                    "postgres unavailable; batch kept for retry",
                    events=sum(map(count_events, payloads)),
                    error=str(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _write_one_by_one(self, payloads: list[str], cause: Exception) -> None:
        """A batch Postgres rejects as data (an event that is not what runner's scripts
        write, put in the stream by someone else) must not block the stream: write
        event by event, recording a bad one with its detail replaced, or skipping it
        with an error line when even that is impossible."""
        log.error("postgres rejected a batch; writing it event by event", error=str(cause))
        for payload in payloads:
            try:
                events = orjson.loads(payload)
            except orjson.JSONDecodeError:
                log.error("stream entry is not JSON; skipped", entry=payload[:200])
                continue
            for event in events:
                await self._write_event(event)

    async def _write_event(self, event: Any) -> None:
        try:
            await self.pg_store.write_events([orjson.dumps([event]).decode()])
            return
        except asyncpg.DataError as exc:
            error = str(exc)
        except (TypeError, ValueError) as exc:
            error = str(exc)
        try:
            quarantined = [
                *event[:7],
                orjson.dumps({"undecodable_detail": str(event[7])[:1000]}).decode(),
            ]
            await self.pg_store.write_events([orjson.dumps([quarantined]).decode()])
            log.error("event detail quarantined", job_id=event[0], seq=event[1], error=error)
        except (asyncpg.DataError, TypeError, ValueError, IndexError) as exc:
            log.error(
                "stream event skipped: not a runner event", event=str(event)[:200], error=str(exc)
            )


def count_events(payload: str) -> int:
    """Events in one stream entry, without decoding it: event arrays are separated by
    ',["' (a quote inside a string, an id or a detail, is always escaped)."""
    return 0 if payload == "[]" else payload.count(',["') + 1
