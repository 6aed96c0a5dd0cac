"""Leases: this daemon renews the jobs it runs and reaps those of daemons that died.

A running job's lease is renewed every third of its time to live. Any daemon
reaps expired leases: the job goes back to the schedule (a retry) or fails
when its attempts are spent. The scripts fence by owner and claim (the seq of
the run's claim), so a daemon that was only slow learns here that it lost its jobs.

After Redis was out of reach, a daemon reaps nothing for one lease: every
daemon's leases ran out during the outage, live ones included, and the live
ones need that long to renew before an expired lease means a dead daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from runner.clock import Clock
from runner.config.settings import Settings
from runner.daemon.executors import Occupancy
from runner.daemon.metrics import Metrics
from runner.daemon.resilience import every
from runner.jobs import ClaimedJob
from runner.logs import get_logger
from runner.store import DaemonInfo, RedisStore

log = get_logger()


class LeaseKeeper:
    def __init__(
        self,
        store: RedisStore,
        *,
        daemon: str,
        clock: Clock,
        lease_ms: int,
        active: Mapping[str, ClaimedJob],
        on_lost: Callable[[str, int, str], None],
        info: DaemonInfo | None = None,
        pools: Callable[[], Mapping[str, Occupancy]] | None = None,
    ) -> None:
        self.store = store
        self.daemon = daemon
        self.clock = clock
        self.lease_ms = lease_ms
        self.active = active
        self.on_lost = on_lost
        self.info = info  # published beside the heartbeat, for `runner status`
        self.pools = pools  # published with each heartbeat, for `runner status`
        self.reap_from_ms = 0  # no reaping before this (ms): set after an outage
        self.metrics: Metrics | None = None

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: the lease's length, from the next renewal."""
        self.lease_ms = int(settings.lease_ttl * 1000)

    @property
    def interval(self) -> float:
        return max(self.lease_ms / 3000, 0.05)

    async def run(self) -> None:
        await every("leases", self.tick, lambda: self.interval, on_failure=self._after_outage)

    def _after_outage(self) -> None:
        self.reap_from_ms = self.clock.now_ms() + self.lease_ms

    async def tick(self) -> None:
        now = self.clock.now_ms()
        pools = None
        if self.pools is not None:
            pools = orjson.dumps({k: o.as_json() for k, o in self.pools().items()}).decode()
        await self.store.heartbeat(self.daemon, now, self.info, pools)
        by_queue: dict[str, dict[str, int]] = {}
        for job in list(self.active.values()):
            by_queue.setdefault(job.queue, {})[job.id] = job.claim
        for queue, jobs in by_queue.items():
            view = self.store.queue(queue)
            for job_id, state in await view.renew_leases(
                self.daemon, now + self.lease_ms, jobs.items()
            ):
                # The owner decides: a job that ended meanwhile was not lost.
                self.on_lost(job_id, jobs[job_id], state)
        await self.store.sync_paused()
        if now < self.reap_from_ms:
            return  # just back from an outage: live daemons are still renewing
        for queue in await self.store.queue_names():
            await self._reap(self.store.queue(queue), now)

    async def _reap(self, store: RedisStore, now: int) -> None:
        """Put back the jobs of dead daemons in this queue (any queue: a daemon that
        serves none of its own still reaps, so no queue waits for its servers)."""
        for reaped in await store.reap_expired(now, self.daemon):
            if reaped.set_aside:
                log.error("job set aside", job_id=reaped.id, state=reaped.state,
                          error=reaped.set_aside, owner=reaped.owner,
                          queue=store.queue_name)  # fmt: skip
                if self.metrics is not None and reaped.state == "failed":
                    self.metrics.set_aside()
                continue
            if self.metrics is not None:
                self.metrics.lease_expired(reaped.state)
            log.warning(
                "lease expired",
                job_id=reaped.id,
                state=reaped.state,
                attempt=reaped.attempt,
                owner=reaped.owner,
                queue=store.queue_name,
            )
