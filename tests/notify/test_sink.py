"""A webhook sink against a real local endpoint: signed POSTs of the transitions it
wants, retried until accepted, dead-lettered after `retry_for` and replayable, in seq
order per job, every attempt recorded in PostgreSQL, one delivering daemon at a time."""

from __future__ import annotations

import asyncio

from runner.store import PgStore, RedisStore, SinkStore, WebhookAttempts
from tests.notify.conftest import Running, eventually, run_jobs, sink_settings
from tests.notify.receiver import Receiver, in_seq_order


async def test_terminal_transitions_are_posted_signed(
    store: RedisStore, pg: PgStore, running: Running, receiver: Receiver
) -> None:
    """By default only terminal transitions are sent, each once, as the documented
    JSON with its event id in the header and a valid signature; each attempt is a row
    in runner_webhook_attempts."""
    await running.start(sink_settings(receiver.url))
    await run_jobs(store, ["a", "b"], fail={"b"})
    await eventually(lambda: len(receiver.accepted) == 2)
    bodies = {r.event_id: r.body for r in receiver.accepted}
    assert set(bodies) == {"a:3", "b:3"}
    assert all(r.signed for r in receiver.accepted)
    assert bodies["a:3"]["to_state"] == "succeeded" and bodies["a:3"]["result"] == 7
    assert bodies["b:3"]["error"] == "boom" and bodies["b:3"]["task"] == "echo"
    assert bodies["a:3"]["from_state"] == "running" and bodies["a:3"]["attempt"] == 1
    attempts = WebhookAttempts(pg)
    await eventually(lambda: _rows(attempts, 2))
    rows = await attempts.of_sink("app")
    assert {(r["event_id"], r["http_status"], r["outcome"]) for r in rows} == {
        ("a:3", 204, "delivered"), ("b:3", 204, "delivered")
    }  # fmt: skip


async def test_every_queue_is_delivered_even_one_made_after_the_sink_began(
    store: RedisStore, running: Running, receiver: Receiver
) -> None:
    """Each queue has its own stream: the sink reads them all, a queue that did not
    exist when it started included, each job's transitions in seq order."""
    await run_jobs(store, ["m0"], queue="mail")  # before the sink: not sent
    states = frozenset({"scheduled", "running", "succeeded"})
    await running.start(sink_settings(receiver.url, states=states))
    await run_jobs(store, ["d1", "d2"])
    await run_jobs(store, ["m1", "m2"], queue="mail")
    await run_jobs(store, ["n1"], queue="brand-new")
    await eventually(lambda: len({r.event_id for r in receiver.accepted}) == 15)
    order = receiver.by_job()
    assert set(order) == {"d1", "d2", "m1", "m2", "n1"}
    assert all(order[i] == [1, 2, 3] for i in order)
    await eventually(lambda: _all_acknowledged(store, ["default", "mail", "brand-new"]))


async def _all_acknowledged(store: RedisStore, queues: list[str]) -> bool:
    owed = [(await store.queue(q).sink("app").summary())["backlog"] for q in queues]
    return all(o is not None and o["entries"] == 0 for o in owed)


async def _rows(attempts: WebhookAttempts, count: int) -> bool:
    return len(await attempts.of_sink("app")) >= count


async def test_refused_requests_are_retried_in_seq_order_per_job(
    store: RedisStore, pg: PgStore, running: Running, receiver: Receiver
) -> None:
    """With 40% of requests refused, every transition of every job still arrives,
    each job's in seq order; the refusals are recorded as failed attempts."""
    receiver.fail_share = 0.4
    states = frozenset({"scheduled", "running", "succeeded"})
    await running.start(sink_settings(receiver.url, states=states, concurrency=4))
    ids = [f"j{n}" for n in range(40)]
    await run_jobs(store, ids)
    await eventually(lambda: len({r.event_id for r in receiver.accepted}) == 120)
    order = receiver.by_job()
    assert all(order[i][:3] == [1, 2, 3] or in_seq_order(order[i]) for i in ids)
    assert all(sorted(set(order[i])) == [1, 2, 3] for i in ids)
    assert receiver.refused > 0
    attempts = WebhookAttempts(pg)
    await eventually(lambda: _rows(attempts, 120 + receiver.refused))
    outcomes = [r["outcome"] for r in await attempts.of_sink("app")]
    assert outcomes.count("failed") == receiver.refused


async def test_a_delivery_past_retry_for_is_dead_lettered_then_replayed(
    store: RedisStore, running: Running, receiver: Receiver
) -> None:
    """An endpoint down for longer than `retry_for`: the delivery goes to the sink's
    dead letters with its body and last error, the stream entry is acknowledged (the
    sink moves on); replayed once the endpoint is back, it is delivered."""
    await receiver.down()
    await running.start(sink_settings(receiver.url, retry_for=0.3))
    await run_jobs(store, ["gone"])
    sink = store.sink("app")
    await eventually(lambda: _dead(sink, 1))
    (letter,) = await sink.dead_letters(10)
    assert letter.fields["event_id"] == "gone:3" and "Connect" in letter.fields["error"]
    await eventually(lambda: _backlog_empty(sink))
    await receiver.up()
    assert await sink.replay("gone:3") == 1
    await eventually(lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[0].event_id == "gone:3" and receiver.accepted[0].signed
    assert (await sink.summary())["dead"] == 0
    await eventually(lambda: _replays_done(sink))


async def _dead(sink: SinkStore, count: int) -> bool:
    return bool((await sink.summary())["dead"] == count)


async def _backlog_empty(sink: SinkStore) -> bool:
    return bool((await sink.summary())["backlog"]["entries"] == 0)


async def _replays_done(sink: SinkStore) -> bool:
    return bool((await sink.summary())["replaying"] == 0)


async def test_one_daemon_delivers_and_another_takes_over_its_pending(
    store: RedisStore, running: Running, receiver: Receiver
) -> None:
    """Two daemons run the sink: only the lease holder delivers. When it stops
    without acknowledging (killed), the other takes over after the lease expires and
    delivers what was left pending: nothing is lost."""
    await receiver.down()
    first = await running.start(sink_settings(receiver.url), daemon="d1", lease_ms=600)
    await eventually(lambda: _held_by(store, "d1"))
    await running.start(sink_settings(receiver.url), daemon="d2", lease_ms=600)
    await run_jobs(store, [f"k{n}" for n in range(10)])
    await eventually(lambda: _pending(store, 1))
    first.cancel()  # its lease is released at stop; a kill would let it expire
    await asyncio.sleep(0)
    await receiver.up()
    await eventually(lambda: len({r.event_id for r in receiver.accepted}) == 10)
    assert await _held_by(store, "d2")


async def _held_by(store: RedisStore, daemon: str) -> bool:
    return bool((await store.sink("app").summary())["holder"] == daemon)


async def _pending(store: RedisStore, least: int) -> bool:
    backlog = (await store.sink("app").summary())["backlog"]
    return backlog is not None and backlog["entries"] >= least
