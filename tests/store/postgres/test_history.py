"""The history keeper against real PostgreSQL: old days dropped whole, old finished
jobs removed in batches, unfinished ones kept whatever their age, one daemon at a
time, and a log line saying what went."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import structlog

from runner.daemon.history_keeper import HistoryKeeper
from runner.jobs import Event
from runner.store.postgres.history import HistoryStore
from runner.store.postgres.partitions import create_partitions, day_partition, partitions
from runner.store.postgres.store import PgStore, events_json
from tests.store.postgres.test_partitions import job_events
from tests.waiting import eventually

DAY_S = 86_400
KEEP_S = 30 * DAY_S
UNFINISHED = ("scheduled", "paused", "running", "retrying")


class FakeClock:
    def __init__(self, now: float) -> None:
        self.moment = now

    def now(self) -> float:
        return self.moment

    def now_ms(self) -> int:
        return int(self.moment * 1000)


def waiting_job(job_id: str, at_ms: int, state: str) -> list[Event]:
    """A job that reached `state` and stays there (its history ends with it)."""
    created = f'{{"task":"echo","args":[],"kwargs":{{}},"due_at":{at_ms}}}'
    events = [Event(job_id, 1, "", "scheduled", at_ms, "client", 0, created)]
    if state != "scheduled":
        events.append(Event(job_id, 2, "scheduled", state, at_ms + 5, "d1", 1, "{}"))
    return events


async def old_and_new_history(pg: PgStore, now: float) -> None:
    """Jobs 40 days old (finished in every way, and unfinished), 10 days old, and stray
    events in the DEFAULT partition from 1990; the 40-day-old day has its partition."""
    old = datetime.fromtimestamp(now, UTC) - timedelta(days=40)
    async with pg.pool.acquire() as conn:
        await create_partitions(conn, [old.date()])
    old_ms = int(day_partition(old.date())[1].timestamp() * 1000) + 3_600_000
    entries = [
        events_json(job_events(f"old-{final}", old_ms, final=final))
        for final in ("succeeded", "failed", "cancelled")
    ]
    entries += [events_json(waiting_job(f"old-{state}", old_ms, state)) for state in UNFINISHED]
    deleted = [*job_events("old-deleted", old_ms, final="cancelled")]
    deleted.append(Event("old-deleted", 4, "cancelled", "deleted", old_ms + 20, "cli", 1, "{}"))
    entries.append(events_json(deleted))
    recent_ms = int((now - 10 * DAY_S) * 1000)
    entries.append(events_json(job_events("recent", recent_ms)))
    stray_ms = int(datetime(1990, 1, 1, tzinfo=UTC).timestamp() * 1000)
    entries.append(events_json(job_events("stray", stray_ms)))
    await pg.write_events(entries)


async def test_keeper_drops_old_days_and_old_finished_jobs_only(pg: PgStore) -> None:
    """With keep = 30 days: the day 40 days back is dropped whole, finished jobs of that
    age leave runner_jobs (three to a statement here), unfinished ones stay, as does
    everything younger; stray events older than keep leave the DEFAULT partition."""
    now = time.time()
    await old_and_new_history(pg, now)
    old_day = day_partition((datetime.fromtimestamp(now, UTC) - timedelta(days=40)).date())[0]
    kept = await HistoryStore(pg).keep(now, KEEP_S, batch=3)
    assert kept is not None
    assert kept.dropped == [old_day]
    assert kept.jobs_removed == 5  # succeeded, failed, cancelled, deleted, and the 1990 one
    assert kept.stray_events_removed == 3
    assert old_day not in {p.name for p in await partitions(pg.pool)}
    rows = await pg.pool.fetch("SELECT id, state FROM runner_jobs ORDER BY id")
    assert {r["id"]: r["state"] for r in rows} == {
        **{f"old-{state}": state for state in UNFINISHED},
        "recent": "succeeded",
    }
    # What is left of an unfinished job's history: its row, not its dropped day's events.
    assert await pg.job_history("old-paused") == []
    assert [h["seq"] for h in await pg.job_history("recent")] == [1, 2, 3]
    again = await HistoryStore(pg).keep(now, KEEP_S)
    assert again is not None and not again.changed_anything()


async def test_keeper_removes_webhook_attempts_older_than_keep(pg: PgStore) -> None:
    """Webhook delivery attempts are history too: those older than keep go, a few to a
    statement, the younger stay."""
    now = time.time()
    rows = [("s", f"j{n}:1", f"j{n}", 1, 1, datetime.fromtimestamp(now - age * DAY_S, UTC),
             "d", 500, "HTTP 500", 3, "failed")
            for n, age in enumerate((40, 40, 35, 31, 5, 1))]  # fmt: skip
    await pg.pool.executemany(
        "INSERT INTO runner_webhook_attempts VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)", rows
    )
    kept = await HistoryStore(pg).keep(now, KEEP_S, batch=3)
    assert kept is not None and kept.attempts_removed == 4
    left = await pg.pool.fetch("SELECT job_id FROM runner_webhook_attempts ORDER BY job_id")
    assert [r["job_id"] for r in left] == ["j4", "j5"]


async def test_keep_forever_drops_nothing(pg: PgStore) -> None:
    """keep = None ("forever"): partitions are made ahead, nothing is removed."""
    now = time.time()
    await old_and_new_history(pg, now)
    jobs = await pg.pool.fetchval("SELECT count(*) FROM runner_jobs")
    kept = await HistoryStore(pg).keep(now + 10 * DAY_S, None)
    assert kept is not None and not kept.dropped and kept.jobs_removed == 0
    assert kept.created  # the days around the later "now"
    assert await pg.pool.fetchval("SELECT count(*) FROM runner_jobs") == jobs


async def test_two_keepers_at_once_do_not_fail(pg: PgStore, database_url: str) -> None:
    """Keepers of several daemons (each with its own pool) passing at the same moment,
    ten times over, with days to make and drop: none fails, and each day is made and
    dropped once (a keeper that finds the lock taken skips its pass)."""
    now = time.time()
    await old_and_new_history(pg, now)
    others = [await PgStore.connect(database_url) for _ in range(2)]
    try:
        stores = [HistoryStore(p) for p in (pg, *others)]
        results = []
        for n in range(10):
            later = now + n * DAY_S
            results += await asyncio.gather(*(s.keep(later, KEEP_S) for s in stores))
    finally:
        for other in others:
            await other.close()
    done = [r for r in results if r is not None]
    dropped = [name for r in done for name in r.dropped]
    created = [name for r in done for name in r.created]
    assert len(dropped) == len(set(dropped)) and len(created) == len(set(created))
    assert sum(r.jobs_removed for r in done) == 5
    names = {p.name for p in await partitions(pg.pool)}
    last_day = (datetime.fromtimestamp(now, UTC) + timedelta(days=12)).date()
    assert day_partition(last_day)[0] in names


async def test_keeper_logs_one_line_and_takes_a_reloaded_keep(pg: PgStore) -> None:
    """The service's pass logs what it dropped and removed as one line; a new `keep`
    (as a reload sets it) applies from the next pass."""
    now = time.time()
    await old_and_new_history(pg, now)
    keeper = HistoryKeeper(HistoryStore(pg), FakeClock(now), keep=None, period=0.05)
    with structlog.testing.capture_logs() as logs:
        await keeper.run_once()
        assert not [line for line in logs if line["event"] == "history upkeep"]
        keeper.keep = KEEP_S
        await keeper.run_once()
    lines = [line for line in logs if line["event"] == "history upkeep"]
    assert len(lines) == 1
    assert lines[0]["jobs_removed"] == 5 and len(lines[0]["partitions_dropped"]) == 1
    assert lines[0]["keep_s"] == KEEP_S and lines[0]["log_level"] == "info"


async def test_keeper_goes_on_after_a_failed_pass(pg: PgStore, database_url: str) -> None:
    """A pass that meets PostgreSQL gone (here, a pool closed under it) is logged as a
    warning and tried again; once PostgreSQL answers, passes run."""
    gone = await PgStore.connect(database_url)
    await gone.close()
    store = HistoryStore(gone)
    keeper = HistoryKeeper(store, FakeClock(time.time()), keep=KEEP_S, period=0.05)
    with structlog.testing.capture_logs() as logs:
        service = asyncio.create_task(keeper.run())
        try:
            await eventually(
                lambda: len([line for line in logs if line["event"].startswith("history keeper:")])
                >= 2,
                what="two failed passes logged",
            )  # fmt: skip
            assert keeper.passes == 0 and not service.done()
            store.pg = pg  # PostgreSQL answers again
            await eventually(lambda: keeper.passes >= 2, what="two passes after")
        finally:
            service.cancel()
    assert keeper.passes >= 2
    failures = [line for line in logs if line["event"].startswith("history keeper:")]
    assert len(failures) >= 2 and failures[0]["log_level"] == "warning"


async def test_a_keep_under_a_day_settles(pg: PgStore) -> None:
    """keep = 1 hour: yesterday's partition goes, and the next pass neither makes it
    again nor drops anything."""
    today = datetime.fromtimestamp(time.time(), UTC).date()
    now = day_partition(today)[1].timestamp() + DAY_S / 2  # noon, whatever the time now
    yesterday = day_partition(today - timedelta(days=1))[0]
    first = await HistoryStore(pg).keep(now, 3600)
    assert first is not None and yesterday in first.dropped
    second = await HistoryStore(pg).keep(now, 3600)
    assert second is not None and not second.changed_anything()
