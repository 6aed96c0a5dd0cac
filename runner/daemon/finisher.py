"""Outcomes reach Redis in batches: one finish script call for all that ended meanwhile.

Jobs end one by one, but a round trip per job would cap throughput; instead
outcomes queue here and each flush sends everything queued so far. If Redis
does not answer, the batch is kept and retried: an outcome is never dropped
(and if the daemon dies first, the lease expires and the job runs again).
A batch the server refuses for another reason than an outage is retried a few
times and then dropped with an error line: its jobs' leases then expire and
another daemon puts them back, so one bad batch never holds every later one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from runner.clock import Clock
from runner.daemon.resilience import Backoff
from runner.errors import StoreUnavailable
from runner.jobs import Outcome
from runner.logs import get_logger
from runner.store import RedisStore

log = get_logger()

FinishedCallback = Callable[[Sequence[Outcome], Sequence[int]], None]

GIVE_UP_AFTER = 8  # failures of one batch that are not an outage, before it is dropped


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
        backoff = Backoff()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                replies = await self.store.finish(self.clock.now_ms(), self.daemon, batch)
            except Exception as exc:  # the service policy: log, pause, go on
                if isinstance(exc, StoreUnavailable) or backoff.failures < GIVE_UP_AFTER:
                    self._pending = batch + self._pending
                    await backoff.pause("finisher", exc, pending=len(batch))
                    continue
                log.error(
                    "outcomes dropped: redis refuses them; their leases will expire",
                    error=str(exc),
                    job_ids=[o.job_id for o in batch][:20],
                )
                replies = [-1] * len(batch)  # neither recorded nor fenced: dropped
            backoff.reset()
            self._log_exceptions(batch, replies)
            self.on_finished(batch, replies)

    def _log_exceptions(self, batch: Sequence[Outcome], replies: Sequence[int]) -> None:
        for outcome, reply in zip(batch, replies, strict=True):
            if reply == 0:
                log.warning(
                    "outcome fenced off: lease lost", job_id=outcome.job_id,
                    attempt=outcome.attempt,
                )  # fmt: skip
            elif reply == 2:
                log.error(
                    "job set aside: its record in redis is malformed", job_id=outcome.job_id,
                    attempt=outcome.attempt, state="failed",
                )  # fmt: skip
