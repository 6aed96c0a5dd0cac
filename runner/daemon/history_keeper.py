"""The history keeper: every daemon's service that bounds the history in PostgreSQL.

At start and then every `period` (an hour), it makes the partitions of the days
around now and, with `[history] keep` set, drops the days older than that and
removes old finished rows of runner_jobs (runner/store/postgres/history.py). One daemon
at a time does a pass; the others find the lock taken and skip theirs. A pass that
fails (PostgreSQL down, a lock not granted in time) is logged and tried again
after RETRY_S: nothing is lost meanwhile, since the DEFAULT partition takes
events of any day and old rows only wait a little longer.

`keep` is read at each pass, so a reload that changes it takes effect at the next.
Each pass also keeps the retired ids in Redis in step with the history it keeps
(runner/daemon/retired_ids.py): filled once, trimmed as old days go.
"""

from __future__ import annotations

from datetime import UTC, datetime

from runner.clock import Clock
from runner.config.settings import Settings
from runner.daemon.resilience import every
from runner.daemon.retired_ids import RetiredIds
from runner.logs import get_logger
from runner.store import HistoryStore, Kept

log = get_logger()

PERIOD_S = 3600.0
RETRY_S = 60.0  # after a failed pass, at most this long before the next try


class HistoryKeeper:
    def __init__(
        self,
        store: HistoryStore,
        clock: Clock,
        keep: float | None,
        period: float = PERIOD_S,
        retired: RetiredIds | None = None,
    ) -> None:
        self.store = store
        self.retired = retired
        self.clock = clock
        self.keep = keep  # seconds of finished history kept; None: for good
        self.period = period
        self.passes = 0  # passes that ran to the end here

    def configure(self, settings: Settings) -> None:
        """Its part of a reload: how long history is kept, from the next pass."""
        self.keep = settings.keep_history

    async def run(self) -> None:
        """A pass now, then one every period; a failed pass is retried sooner."""
        await every(
            "history keeper", self.run_once, lambda: self.period,
            retry=lambda: min(self.period, RETRY_S),
        )  # fmt: skip

    async def run_once(self) -> Kept | None:
        """One pass, and its log line when it changed anything; None when another
        daemon was doing the pass."""
        now, keep = self.clock.now(), self.keep
        kept = await self.store.keep(now, keep)
        if kept is None:
            log.debug("history upkeep skipped: another daemon is doing it")
            return None
        if self.retired is not None:
            await self.retired.upkeep(keep)
        self.passes += 1
        if kept.changed_anything():
            oldest = None if keep is None else datetime.fromtimestamp(now - keep, UTC)
            log.info(
                "history upkeep",
                keep_s=keep,
                oldest_kept=None if oldest is None else oldest.isoformat(timespec="seconds"),
                partitions_created=kept.created,
                partitions_dropped=kept.dropped,
                stray_events_removed=kept.stray_events_removed,
                jobs_removed=kept.jobs_removed,
                webhook_attempts_removed=kept.attempts_removed,
            )
        return kept
