"""Outcomes reach Redis in batches: one finish script call for all that ended meanwhile.

Jobs end one by one, but a round trip per job would cap throughput; instead
outcomes queue here and each flush sends everything queued so far. If Redis
does not answer, the batch is kept and retried: an outcome is never dropped
(and if the daemon dies first, the lease expires and the job runs again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runner.clock import Clock
from runner.jobs import Outcome
from runner.logs import get_logger
from runner.store.redis_store import RedisStore

log = get_logger()

FinishedCallback = Callable[[Sequence[Outcome], Sequence[bool]], None]


class Finisher:
    def __init__(
        self, store: RedisStore, daemon: str, clock: Clock, on_finished: FinishedCallback
    ) -> None:
        self.store = store
        self.daemon = daemon
        self.clock = clock
        self.on_finished = on_finished
        self._pending: list[Outcome] = []
        self._wakeup = asyncio.Event()

    def submit(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        delay = 0.05
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                recorded = await self.store.finish(self.clock.now_ms(), self.daemon, batch)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._pending = batch + self._pending
                log.warning("redis unavailable; outcomes kept", error=str(exc), pending=len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for outcome, ok in zip(batch, recorded, strict=True):
                if not ok:
                    log.warning(
                        "outcome fenced off: lease lost",
                        job_id=outcome.job_id,
                        attempt=outcome.attempt,
                    )
            self.on_finished(batch, recorded)
