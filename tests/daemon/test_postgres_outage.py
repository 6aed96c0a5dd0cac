"""Postgres stopped for 10 s while jobs run: no transition is lost or written twice.

"Written twice" is counted where the table cannot hide it: the events table's
primary key with ON CONFLICT DO NOTHING drops a repeated row silently, so a
trigger counts every row the recorder's committed statements proposed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.servers.embedded import EmbeddedServers
from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.waiting import eventually

OUTAGE_S = 10

# BEFORE ROW triggers fire for every row an INSERT proposes, including those ON
# CONFLICT DO NOTHING then drops; what an aborted statement proposed is rolled back.
COUNT_WRITES = """
CREATE TABLE test_event_writes (job_id text, seq int);
CREATE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_event_writes VALUES (NEW.job_id, NEW.seq);
    RETURN NEW;
END $$;
CREATE TRIGGER test_count_write BEFORE INSERT ON runner_job_events
    FOR EACH ROW EXECUTE FUNCTION test_count_write();
"""


async def _succeeded(client: Client, ids: list[str]) -> bool:
    return [(await client.get(job_id)).state for job_id in ids] == ["succeeded"] * len(ids)


async def test_no_transition_is_lost_while_postgres_is_down(
    own_postgres: EmbeddedServers,
    servers: object,
    redis: Redis,
    prefix: str,
    tmp_path: Path,
    spawn: Callable[..., DaemonProcess],
    make_settings: Callable[..., Settings],
) -> None:
    """Jobs keep running through the outage; afterwards every job has exactly seq 1, 2, 3."""
    redis_url = make_settings().redis_url
    assert redis_url is not None
    config = daemon_config_file(
        tmp_path / "runner.toml", redis_url, own_postgres.database_url, prefix
    )
    daemon = spawn(config)
    daemon.wait_ready()  # migrated: the trigger can go on the table
    pg = await PgStore.connect(own_postgres.database_url)
    try:
        await pg.pool.execute(COUNT_WRITES)
    finally:
        await pg.close()
    client = Client(make_settings(database_url=own_postgres.database_url), redis)
    ids = [await client.enqueue("echo", [i]) for i in range(20)]
    await eventually(lambda: _succeeded(client, ids), what="the first jobs succeeding")
    await asyncio.to_thread(own_postgres.stop_postgres)
    for second in range(OUTAGE_S):  # jobs keep arriving throughout the outage
        ids += [await client.enqueue("echo", [second, i]) for i in range(10)]
        await asyncio.sleep(1)
    during = [await client.get(job_id) for job_id in ids[20:]]
    assert all(job.state == "succeeded" for job in during[:-10])  # the work went on
    assert daemon.events("recorder: postgres unavailable; retrying")
    await asyncio.to_thread(own_postgres.start_postgres)
    pg = await PgStore.connect(own_postgres.database_url)
    try:
        await eventually(
            lambda: pg.pool.fetchval(
                "SELECT count(*) = $1 FROM runner_job_events WHERE to_state = 'succeeded'",
                len(ids),
            ),
            timeout=30, every=0.1, what="every job's success recorded",
        )  # fmt: skip
        rows = await pg.pool.fetch("SELECT job_id, seq, to_state FROM runner_job_events")
        writes = await pg.pool.fetch(
            "SELECT job_id, seq, count(*) FROM test_event_writes GROUP BY 1, 2 HAVING count(*) > 1"
        )
        written = await pg.pool.fetchval("SELECT count(*) FROM test_event_writes")
    finally:
        await pg.close()
    by_job: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"], []).append((row["seq"], row["to_state"]))
    assert sorted(by_job) == sorted(ids)
    expected = [(1, "scheduled"), (2, "running"), (3, "succeeded")]
    assert all(sorted(events) == expected for events in by_job.values())
    assert len(rows) == 3 * len(ids)
    assert [tuple(w) for w in writes] == [], "events the recorder wrote more than once"
    assert written == 3 * len(ids)
