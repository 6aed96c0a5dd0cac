"""What the limits hold back, as operators see it, on real Redis: `runner status` (its
document and its text) gives per limited task what runs against its cap, what waits
on each limit, its rate's starts and its busiest keys; `runner show` says why a due
job is not starting (paused, a cap, a rate, its key's turn)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from redis.asyncio import Redis

from runner.cli.render.status import render
from runner.client.client import Client
from runner.client.show import show_document
from runner.client.status import status_document
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from tests.conftest import TEST_TASKS

LEASE_MS = 60_000


def _client(make_settings: Callable[..., Settings], redis: Redis, pg: PgStore) -> Client:
    """`echo`: 2 slots per kwargs.account and a rate; `noop`: turns per args.0."""
    tasks = dict(TEST_TASKS)
    tasks["echo"] = replace(tasks["echo"], concurrency=2, concurrency_key="kwargs.account",
                            rate_interval_us=100_000, rate_burst=3)  # fmt: skip
    tasks["noop"] = replace(tasks["noop"], fair_key="args.0")
    return Client(make_settings(tasks=tasks), redis, pg)


async def _claim(client: Client, count: int) -> list[str]:
    now = client.clock.now_ms()
    found = await client.store.claim_due(now, {"async": count}, "d1", now + LEASE_MS)
    return [job.id for job in found.jobs]


async def test_status_gives_each_limited_task_its_figures_and_busiest_keys(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    client = _client(make_settings, redis, pg)
    await client.enqueue_many([client.new_job("echo", kwargs={"account": "big"}) for _ in range(6)]
                              + [client.new_job("echo", kwargs={"account": "small"})])  # fmt: skip
    await client.enqueue_many([client.new_job("noop", ["t1"]) for _ in range(4)])
    assert len(await _claim(client, 9)) == 3 + 2  # 3 echo (the rate burst), 2 in noop turn
    doc = await status_document(client.settings)
    echo, noop = doc["limits"]["echo"], doc["limits"]["noop"]
    assert (echo["concurrency"], echo["concurrency_key"], echo["rate_per_s"]) == (
        2, "kwargs.account", 10.0)  # fmt: skip
    assert echo["running"] == 3 and echo["rate_starts"] == 3
    assert echo["waiting"]["cap"] + echo["waiting"]["rate"] == 4
    assert echo["keys"][0]["key"] == "big" and echo["keys"][0]["running"] == 2
    assert echo["keys"][0]["concurrency"] == 2
    assert noop["fair_key"] == "args.0" and noop["waiting"]["turn"] == 2
    assert doc["due"]["async"] >= 2  # jobs waiting for their turn count as due
    text = render(doc, as_json=False)
    assert "echo: running 3 (at most 2 per kwargs.account)" in text
    assert "rate 10/s, 3 starts so far" in text
    assert "noop: running 0, 2 waiting for their key's turn" in text


async def test_show_says_why_a_due_job_is_not_starting(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    client = _client(make_settings, redis, pg)
    turns = await client.enqueue_many([client.new_job("noop", ["t1"]) for _ in range(3)])
    shown = await show_document(client.settings, turns[0])
    assert (
        shown["waiting_for"]
        == "its key's turn ('noop=t1'): 3 jobs of its key wait, and 1 keys take turns"
    )
    await client.store.pause_task("noop", "test", client.clock.now_ms())
    shown = await show_document(client.settings, turns[0])
    assert shown["waiting_for"] == "its task is paused (runner resume --task noop)"
    await client.store.resume_task("noop")
    assert len(await _claim(client, 10)) + len(await _claim(client, 10)) == 3
    assert "waiting_for" not in await show_document(client.settings, turns[0])


async def test_limit_records_of_another_type_are_never_a_crash(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    """Anything in Redis is untrusted: the busy groups' list, a rate's starts, the count
    of jobs waiting for a turn and the turn clock, each of another type, leave claims,
    enqueues and status working (the figures they hold count as nothing)."""
    client = _client(make_settings, redis, pg)
    prefix = client.store.keys.due_prefix
    for name in ("limited", "ratestarts", "fairn"):
        await redis.rpush(f"{prefix}{name}", "junk")
    await redis.hset(f"{prefix}fairclock", "x", "junk")
    await client.enqueue_many([client.new_job("noop", [f"t{n % 2}"]) for n in range(4)])
    await client.enqueue_many([client.new_job("echo", kwargs={"account": "a"}) for _ in range(2)])
    assert len(await _claim(client, 10)) == 6
    doc = await status_document(client.settings)
    assert doc["limits"]["echo"]["running"] == 0  # the list of busy groups is unreadable
    assert doc["due"]["async"] == 0
