"""The promoter: every daemon puts parked jobs into the Redis schedule before they are due.

Jobs due beyond the park horizon wait in PostgreSQL (see parking.py). Each daemon
looks every tenth of the horizon (at most a minute apart) and moves, in batches,
every parked job due within the horizon, so a job is in Redis long before its
time and starts exactly then, through the pump like any other. Several daemons
scan at once without moving a job twice (rows locked, SKIP LOCKED), and after
downtime the first scan catches up on everything that came due meanwhile.
The same scan parks what waits in the Redis schedule beyond the horizon (a retry
whose backoff reaches that far, a job enqueued while PostgreSQL was down), so no
job sits in Redis memory for longer than a period before it is parked.
A changed horizon (SIGHUP) counts from the next scan.
"""

from __future__ import annotations

from runner.config.settings import Settings
from runner.daemon.resilience import every
from runner.logs import get_logger
from runner.store import Parking

log = get_logger()

BATCH = 1000
LONGEST_PERIOD_S = 60.0
SHORTEST_PERIOD_S = 0.05
OFF_PERIOD_S = 5.0  # parking off: jobs parked before are still put back


class Promoter:
    def __init__(self, parking: Parking, batch: int = BATCH) -> None:
        self.parking = parking
        self.batch = batch
        self.moved = 0

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: the park horizon, from the next scan."""
        self.parking.horizon_s = settings.park_horizon

    @property
    def period(self) -> float:
        horizon = self.parking.horizon_s
        if horizon is None:
            return OFF_PERIOD_S
        return min(max(horizon / 10, SHORTEST_PERIOD_S), LONGEST_PERIOD_S)

    async def run(self) -> None:
        await every("promoter", self.scan, lambda: self.period)

    async def scan(self) -> int:
        """Move every parked job now due within the horizon into Redis, and park every
        job of the Redis schedule due beyond it; how many moved into Redis."""
        moved = await self.parking.promote_due(self.batch)
        if moved:
            self.moved += moved
            log.info("parked jobs scheduled", jobs=moved, horizon_s=self.parking.horizon_s)
        parked = await self.parking.park_far(self.batch)
        if parked:
            log.info("far jobs parked", jobs=parked, horizon_s=self.parking.horizon_s)
        return moved
