"""Contract tests for the Postgres side: migrations and idempotent event batches."""

from __future__ import annotations

import asyncio

import asyncpg

from runner.jobs import Event
from runner.store.postgres.migrate import migrate
from runner.store.postgres.queries import migrations, query
from runner.store.postgres.store import PgStore, events_json, first_write

T = 1_800_000_000_000


def events_for(job_id: str) -> list[Event]:
    return [
        Event(
            job_id,
            1,
            "",
            "scheduled",
            T,
            "client",
            0,
            f'{{"task":"echo","args":[1],"kwargs":{{}},"due_at":{T}}}',
        ),
        Event(job_id, 2, "scheduled", "running", T + 5, "d1", 1, "{}"),
        Event(job_id, 3, "running", "succeeded", T + 9, "d1", 1, '{"result":{"ok":true}}'),
    ]


async def test_replayed_batches_insert_each_event_once(pg: PgStore) -> None:
    """Writing the same batch twice leaves one row per (job, seq)."""
    batch = events_for("j1") + events_for("j2")
    await pg.write_events([events_json(batch)])
    await pg.write_events([events_json(batch)])
    count = await pg.pool.fetchval("SELECT count(*) FROM runner_job_events")
    assert count == 6
    history = await pg.job_history("j1")
    assert [(h["seq"], h["from_state"], h["to_state"]) for h in history] == [
        (1, None, "scheduled"),
        (2, "scheduled", "running"),
        (3, "running", "succeeded"),
    ]


async def test_a_batch_with_some_events_replayed_records_the_new_ones_once(
    pg: PgStore,
) -> None:
    """A batch whose first write fails on an event already recorded is written again
    whole: its new events are recorded, the replayed one not twice, and runner_jobs
    folds them all."""
    first, second, third = events_for("j1")
    await pg.write_events([events_json([first])])
    finished = await pg.write_events([events_json([first, second]), events_json([third])])
    assert finished == [("j1", 3)]
    seqs = await pg.pool.fetch("SELECT seq FROM runner_job_events ORDER BY seq")
    assert [r["seq"] for r in seqs] == [1, 2, 3]
    job = await pg.get_job("j1")
    assert job is not None and (job["state"], job["task"]) == ("succeeded", "echo")


async def test_jobs_row_folds_batches_in_any_order(pg: PgStore) -> None:
    """runner_jobs ends at the latest state whatever order batches arrive in."""
    first, second, third = events_for("j1")
    await pg.write_events([events_json([third])])
    await pg.write_events([events_json([second]), events_json([first])])
    job = await pg.get_job("j1")
    assert job is not None
    assert (job["state"], job["task"], job["args"], job["result"]) == (
        "succeeded",
        "echo",
        [1],
        {"ok": True},
    )
    assert job["updated_at_ms"] == T + 9 and job["created_at_ms"] == T


async def test_args_come_from_the_latest_event_that_gives_them_in_any_order(
    pg: PgStore,
) -> None:
    """Recorders commit in parallel: the release that gave a job the results it runs
    with (seq 2), an update before it (args and kwargs), and the run after it can be
    written in any order; the row ends with the args of the latest event that gives
    them, and the kwargs of the latest that gives those."""
    enqueue = Event(
        "w1",
        1,
        "",
        "blocked",
        T,
        "client",
        0,
        '{"task":"echo","args":["x"],"kwargs":{"k":0},"after":"[\\"d\\"]"}',
    )
    update = Event(
        "w1",
        2,
        "blocked",
        "blocked",
        T + 1,
        "client",
        0,
        '{"update":true,"args":["y"],"kwargs":{"k":1}}',
    )
    release = Event(
        "w1",
        3,
        "blocked",
        "scheduled",
        T + 2,
        "d1",
        0,
        '{"dependency":"d","dependency_state":"succeeded","args":[7,"y"]}',
    )
    run = Event("w1", 4, "scheduled", "running", T + 3, "d1", 1, "{}")
    done = Event("w1", 5, "running", "succeeded", T + 4, "d1", 1, '{"result":1}')
    for order in ([done, run], [release], [enqueue, update]), ([update], [done], [enqueue],
                                                                [release, run]):  # fmt: skip
        await pg.pool.execute("DELETE FROM runner_jobs")
        for batch in order:
            await pg.write_events([events_json(batch)])
        job = await pg.get_job("w1")
        assert job is not None and (job["args"], job["kwargs"]) == ([7, "y"], {"k": 1}), order


async def test_concurrent_migrations_apply_once(database_url: str) -> None:
    """Several daemons starting at once: the advisory lock lets one migrate, the rest wait."""
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                conn.execute(
                    "DROP TABLE runner_job_events, runner_jobs, runner_parked_jobs,"
                    " runner_webhook_attempts, runner_schema_migrations"
                )
                for conn in conns[:1]
            )
        )
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migrations())]


def test_afirst_write_leaves_out_only_the_replayed_events_clause() -> None:
    """The statement a batch is first written with differs from write_events.sql by
    the events' ON CONFLICT line alone: runner_jobs still folds a job met again."""
    full, first = query("write_events"), first_write()
    assert "ON CONFLICT (job_id, seq, at)" in full and "ON CONFLICT (job_id" not in first
    assert first.count("ON CONFLICT (id) DO UPDATE") == full.count("ON CONFLICT (id) DO UPDATE")
    assert len(full) - len(first) == len("    ON CONFLICT (job_id, seq, at) DO NOTHING\n")
