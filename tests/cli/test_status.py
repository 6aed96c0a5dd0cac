"""`runner status`: the backlog and its lag, live daemons and their work, paused tasks,
maintenance mode, the recorder's backlog and what was set aside, at a glance."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import orjson
from redis.asyncio import Redis

from runner.client.client import Client
from runner.client.status import status_of
from runner.daemon.recorder import Recorder
from runner.jobs import NewJob, rfc3339
from runner.store.postgres.store import PgStore
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from runner.store.redis.status import DaemonInfo, read_daemon_info
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli
from tests.store.redis.test_scripts import NOW, new_job


async def test_status_counts_what_was_set_aside(
    store: RedisStore,
    redis: Redis,
    keys: Keys,
    pg: PgStore,
    daemon_config: Callable[..., Path],
) -> None:
    """A malformed job and a foreign stream entry, once set aside, are counted by
    `runner status` (JSON and text), beside the backlog and Postgres' state counts,
    with the real names of the keys that hold them (not a `{prefix}` template)."""
    await store.ensure_event_group()
    jobs = [new_job("bad"), new_job("good"), new_job("later", due=NOW * 2)]
    await store.enqueue_many(jobs, "t", NOW)
    await redis.hset(keys.job("bad"), stored("seq"), "x")
    await store.claim_due(NOW, {"async": 1}, "d", NOW + 1000)  # sets "bad" aside
    await redis.xadd(keys.events, {"not-e": "1"})
    await Recorder(store, pg_store=pg, consumer="c", batch_events=10, flush_interval=0.05).drain()
    done = cli("status", "--json", config=daemon_config())
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["set_aside"] == {
        "jobs": 1, "events": 1, "jobs_key": keys.dead, "events_key": keys.dead_events
    }  # fmt: skip
    assert doc["due"]["async"] == 0 and doc["waiting"]["async"] == 2  # NOW is ahead of the clock
    assert doc["states"] == {"scheduled": 3}
    assert doc["unrecorded_entries"] == 0 and doc["running"] == 0
    text = cli("status", config=daemon_config()).stdout
    assert f"set aside    1 malformed jobs ({keys.dead}), 1 stream entries" in text
    assert f"({keys.dead_events})" in text and "{prefix}" not in text


def _job(job_id: str, task: str, due: int, kind: str = "async") -> NewJob:
    return NewJob(job_id, task, kind, "[]", "{}", due, 3)


async def _scene(store: RedisStore, redis: Redis, keys: Keys, pg: PgStore, now: int) -> None:
    """Three jobs running (two on a live daemon, one on a daemon gone silent), one
    scheduled; then, unrecorded, a due io job and an echo job held by its task's
    pause; maintenance mode; a pause note and a daemon note that are not JSON."""
    await store.ensure_event_group()
    first = [_job("e1", "echo", now - 30_000), _job("e2", "echo", now - 30_000)]
    first += [_job("n1", "noop", now - 30_000), _job("n2", "noop", now + 3_600_000)]
    await store.enqueue_many(first, "t", now - 40_000)
    await store.claim_due(now, {"async": 2}, "d1", now + 60_000)
    await store.claim_due(now, {"async": 1}, "gone", now + 60_000)
    await Recorder(store, pg_store=pg, consumer="c", batch_events=10, flush_interval=0.05).drain()
    await store.enqueue_many(
        [_job("n3", "noop", now - 5000, "io"), _job("e3", "echo", now)], "t", now
    )
    await store.pause_task("echo", "alice", now)
    await store.claim_due(now, {"async": 1}, "d1", now + 60_000)  # holds e3
    await store.read_events("c", 10, None)  # read, not acknowledged: pending
    await store.pause_task(":all", "bob", now)
    await redis.hset(keys.paused, "gh\nost", "not json")
    pools = {"io": {"in_use": 2, "free": 0, "held": 1,
                    "oldest_held": {"job_id": "j\x1b9", "since": now - 5000}},
             "gpu": {"in_use": 1}, "cpu": "busy"}  # fmt: skip
    await store.heartbeat(
        "d1", now, DaemonInfo("web1", 41, now - 60_000, "9.9.9"), orjson.dumps(pools).decode()
    )
    await store.heartbeat("d2", now, pools="{not json")
    await redis.hset(keys.daemon_info, "d2", "{not json")
    await store.heartbeat("gone", now - 3_600_000, DaemonInfo("web2", 42, now, "9.9.9"))


async def test_status_shows_daemons_their_work_pauses_and_the_recorder(
    store: RedisStore,
    redis: Redis,
    keys: Keys,
    pg: PgStore,
    daemon_config: Callable[..., Path],
) -> None:
    """Each part of `runner status --json`: live daemons with what they say of
    themselves (unknown where the note is not JSON), running jobs per owner, the
    oldest due job's lag, paused tasks with who, when and how many held, maintenance
    mode, the recorder's backlog, and Postgres' counts per task and state; the text
    shows each, with Redis' strings made safe for a terminal."""
    now = int(time.time() * 1000)
    await _scene(store, redis, keys, pg, now)
    done = cli("status", "--json", config=daemon_config())
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["daemons"] == ["d1", "d2"]
    d1, d2 = doc["daemon_details"]
    assert 0 <= d1.pop("heartbeat_age_ms") < 30_000 and 0 <= d2.pop("heartbeat_age_ms") < 30_000
    held = d1["pools"]["io"]["oldest_held"]
    assert 5000 <= held.pop("age_ms") < 35_000
    assert d1 == {"id": "d1", "host": "web1", "pid": 41, "version": "9.9.9",
                  "started": rfc3339(now - 60_000), "last_heartbeat": rfc3339(now),
                  "pools": {"io": {"in_use": 2, "free": 0, "held_by_timed_out": 1, "oldest_held": {
                      "job_id": "j\x1b9", "since": rfc3339(now - 5000)}}}}  # fmt: skip
    assert d2 == {"id": "d2", "host": None, "pid": None, "version": None, "started": None,
                  "last_heartbeat": rfc3339(now), "pools": {}}  # fmt: skip
    assert doc["running"] == 3 and doc["running_by_daemon"] == {"d1": 2, "gone": 1}
    assert doc["due"] == {"async": 0, "io": 1, "cpu": 0}
    assert 5000 <= doc["oldest_due_lag_ms"] < 35_000
    assert doc["paused_tasks"] == {
        "echo": {"by": "alice", "at": rfc3339(now), "held": 1},
        "gh\nost": {"by": None, "at": None, "held": 0},
    }
    assert doc["maintenance"] is True
    assert doc["maintenance_since"] == {"by": "bob", "at": rfc3339(now)}
    assert doc["unrecorded_entries"] == 1 and doc["recorder_pending"] == 1
    assert 0 <= doc["unrecorded_oldest_age_ms"] < 30_000
    assert doc["states"] == {"running": 3, "scheduled": 1}
    assert doc["tasks"] == {"echo": {"running": 2}, "noop": {"running": 1, "scheduled": 1}}
    text = cli("status", config=daemon_config()).stdout
    assert "due now      1 (async 0, io 1, cpu 0); the oldest is " in text
    assert "running      3: 2 on d1, 1 on gone (not live)" in text
    assert (
        "      pools: io 2 in use, 0 free (1 held by timed-out jobs; the oldest, job j?9, for"
        in text
    )
    assert "    d1: host web1, pid 41, version 9.9.9, started " in text
    assert "    d2: host unknown, pid unknown, version unknown, started unknown" in text
    assert "paused       2: echo, gh?ost\n" in text
    assert f"    echo: by alice at {rfc3339(now)}, 1 due jobs held\n" in text
    assert "    gh?ost: by unknown at unknown, 0 due jobs held\n" in text
    assert f"maintenance  ON since {rfc3339(now)} by bob: no daemon claims" in text
    assert "unrecorded   1 stream entries (1 read by a recorder, not yet in Postgres" in text
    assert "states       running 3, scheduled 1 (Postgres)" in text
    assert "per task     echo: running 2\n" in text and "\n               noop: running 1," in text


async def test_status_of_a_quiet_system(
    store: RedisStore, daemon_config: Callable[..., Path]
) -> None:
    """With nothing due, running, paused or unrecorded, the new parts say so plainly
    (no lag, no owner, maintenance off) and the text has no line for tasks."""
    done = cli("status", "--json", config=daemon_config())
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["oldest_due_lag_ms"] is None and doc["unrecorded_oldest_age_ms"] is None
    assert doc["running_by_daemon"] == {} and doc["daemon_details"] == []
    assert doc["paused_tasks"] == {} and doc["maintenance"] is False
    assert doc["maintenance_since"] is None and doc["recorder_pending"] == 0
    assert doc["tasks"] == {} and doc["states"] == {}
    text = cli("status", config=daemon_config()).stdout
    assert "  paused       -\n  maintenance  off\n" in text and "per task" not in text


async def test_heartbeat_notes_a_daemon_once_and_forget_removes_it(
    store: RedisStore, redis: Redis, keys: Keys
) -> None:
    """The note of a daemon is written at its first heartbeat and kept (later beats
    only move its score); forgetting the daemon removes both. A score no clock gives
    and notes of the wrong shape read as unknown, never as an error."""
    await store.heartbeat("d", 1000, DaemonInfo("h", 1, 500, "1.0"))
    await store.heartbeat("d", 2000, DaemonInfo("other", 2, 600, "2.0"))
    assert orjson.loads(await redis.hget(keys.daemon_info, "d") or "") == {
        "host": "h", "pid": 1, "started": 500, "version": "1.0"
    }  # fmt: skip
    assert await redis.zscore(keys.daemons, "d") == 2000
    await redis.zadd(keys.daemons, {"odd": float("inf")})
    for daemon, note in [("odd", "[1]"), ("d2", '{"pid": true, "started": 1e300, "host": 7}')]:
        await redis.hset(keys.daemon_info, daemon, note)
    await store.heartbeat("d2", 2000)
    overview = await store.overview(2500, 0)
    odd = overview["daemon_details"][2]
    assert (odd["id"], odd["last_heartbeat"], odd["heartbeat_age_ms"]) == ("odd", None, None)
    assert [d["host"] for d in overview["daemon_details"]] == ["h", None, None]
    assert overview["daemon_details"][1]["pid"] is None
    assert overview["daemon_details"][1]["started"] is None
    await store.forget_daemon("d")
    assert await redis.zscore(keys.daemons, "d") is None
    assert await redis.hget(keys.daemon_info, "d") is None


async def test_status_lists_only_daemons_heard_from_within_a_lease(
    client: Client, store: RedisStore
) -> None:
    """A daemon whose last heartbeat is older than a lease is not listed (a SIGKILL
    leaves its heartbeat and note in Redis); one heard from within the lease is."""
    now, lease_ms = int(time.time() * 1000), int(client.settings.lease_ttl * 1000)
    await store.heartbeat("silent", now - lease_ms - 500, DaemonInfo("h", 1, 0, "1.0"))
    await store.heartbeat("quiet", now - lease_ms + 2000, DaemonInfo("h", 2, 0, "1.0"))
    doc = await status_of(client, {})
    assert doc["daemons"] == ["quiet"]
    assert [daemon["pid"] for daemon in doc["daemon_details"]] == [2]


def test_daemon_info_read_back_from_anyone() -> None:
    """Whatever lies in the notes hash, reading it gives strings, whole numbers or None."""
    unknown = {"host": None, "pid": None, "started": None, "version": None}
    for text in [None, "", "{", "[]", '"x"', "1e999", '{"pid": 1.5, "version": 3}']:
        assert read_daemon_info(text) == unknown
    far = read_daemon_info('{"started": 9007199254740991}')
    assert far["started"] == "9007199254740991 ms since the epoch (out of range)"
    long = read_daemon_info(orjson.dumps({"host": "x" * 10_000}).decode())
    assert long["host"] == "x" * 200


async def test_status_shows_each_queue_once_there_are_several(
    client: Client, daemon_config: Callable[..., Path]
) -> None:
    """status --json has every queue's figures; the text has a line per queue once
    there is more than the default one."""
    config = daemon_config()
    assert "queue " not in cli("status", config=config).stdout
    await client.enqueue("echo", [1], queue="mail")
    await client.enqueue("echo", [2], queue="mail", delay=600)
    doc = orjson.loads(cli("status", "--json", config=config).stdout)
    mail = doc["queues"]["mail"]
    assert (sum(mail["due"].values()), sum(mail["waiting"].values()), mail["running"]) == (1, 2, 0)
    assert set(doc["queues"]) == {"default", "mail"}
    text = cli("status", config=config).stdout
    assert "  queue mail: due 1, waiting 2, running 0" in text
