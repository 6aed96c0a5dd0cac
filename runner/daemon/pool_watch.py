"""The pool watch: says in the log why work waits when a pool is full.

io jobs past their timeout keep their threads (a thread cannot be stopped), and
long jobs can fill any pool; the queue then only shows "0 running, 8 due". Every
second this service looks at each kind's free slots; a kind that has had none for
longer than `[pools] warn_full_after` while jobs of that kind are due is logged as
a warning with its figures (and again each such period while it lasts), naming the
oldest job still holding a thread past its timeout.

Only a full pool costs a Redis round trip (the due count), once per period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from runner.clock import Clock
from runner.config.settings import Settings
from runner.daemon.executors import Occupancy
from runner.daemon.resilience import every
from runner.logs import get_logger
from runner.store import RedisStore

log = get_logger()

CHECK_EVERY_S = 1.0


class PoolWatch:
    def __init__(
        self,
        store: RedisStore,
        pools: Callable[[], Mapping[str, Occupancy]],
        clock: Clock,
        after_s: float | None,
    ) -> None:
        self.store = store
        self.pools = pools
        self.clock = clock
        self.after_s = after_s  # None: never warn
        self._full_since: dict[str, int] = {}  # kind -> since when it has no free slot (ms)
        self._warned_at: dict[str, int] = {}  # kind -> when it was last logged (ms)

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: how long a full pool waits before it is logged."""
        self.after_s = settings.pools_full_warning

    async def run(self) -> None:
        await every("pool watch", self.check, lambda: CHECK_EVERY_S)

    async def check(self) -> list[str]:
        """Log each kind full for too long while its jobs are due; the kinds logged."""
        now = self.clock.now_ms()
        pools = self.pools()
        overdue = self._full_too_long(pools, now)
        if not overdue:
            return []
        due = await self.store.due_counts(now)
        logged = [kind for kind in overdue if due.get(kind, 0) > 0]
        for kind in logged:
            self._warn(kind, pools[kind], due[kind], now)
        return logged

    def _full_too_long(self, pools: Mapping[str, Occupancy], now: int) -> list[str]:
        """The kinds with no free slot for longer than `after_s`, not logged within it."""
        if self.after_s is None:
            return []
        after = int(self.after_s * 1000)
        kinds = []
        for kind, pool in pools.items():
            if pool.free > 0:
                self._full_since.pop(kind, None)
                self._warned_at.pop(kind, None)
                continue
            since = self._full_since.setdefault(kind, now)
            if now - since >= after and now - self._warned_at.get(kind, since) >= after:
                kinds.append(kind)
        return kinds

    def _warn(self, kind: str, pool: Occupancy, due: int, now: int) -> None:
        self._warned_at[kind] = now
        oldest = pool.held[0] if pool.held else None
        log.warning(
            f"{kind} pool full while jobs are due",
            kind=kind,
            full_for_s=round((now - self._full_since[kind]) / 1000, 1),
            in_use=pool.in_use,
            due=due,
            held_by_timed_out=len(pool.held),
            oldest_held_job_id=oldest[0] if oldest else None,
            oldest_held_for_s=round((now - oldest[1]) / 1000, 1) if oldest else None,
            hint=_hint(kind, pool),
        )


def _hint(kind: str, pool: Occupancy) -> str:
    if pool.held:
        return (
            f"{len(pool.held)} of its slots are threads of io jobs past their timeout, which"
            " run on until their function returns: fix the task, or raise [pools] io"
        )
    return f"every slot runs a job: raise [pools] {kind}, or wait for them to end"
