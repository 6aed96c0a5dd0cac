"""Rate limits in the claim path, on real Redis, at exact times: `rate = "10/s"` lets
one job start every 100 ms across every daemon; a job held back stays due and
waits, and claims say when the rate next allows a start (no claim in vain);
`rate_burst` lets that many start at once; `rate_key` makes it a rate per value."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.client.show import show_document
from runner.config.settings import Settings
from runner.jobs import rfc3339
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.limits.shared import limited_client

LEASE_MS = 60_000


async def _claim(client: Client, at_ms: int, daemon: str = "d1") -> tuple[list[str], float | None]:
    found = await client.store.claim_due(at_ms, {"async": 10}, daemon, at_ms + LEASE_MS)
    return [job.id for job in found.jobs], found.next_due_ms["async"]


async def test_one_start_per_interval_across_daemons(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    client = limited_client(make_settings, redis, pg, rate_interval_us=100_000)
    for n in range(4):
        await client.enqueue("echo", [n], job_id=f"r{n}")
    t = client.clock.now_ms() + 10
    assert await _claim(client, t) == (["r0"], t + 100)
    assert await _claim(client, t + 50, "d2") == ([], t + 100)
    assert set((await client.store.job_states(["r1", "r2"])).values()) == {"scheduled"}
    shown = await show_document(client.settings, "r1")
    assert (
        shown["waiting_for"]
        == f"its rate ('echo'): the next start is allowed at {rfc3339(t + 100)}"
    )
    assert (await _claim(client, t + 100, "d3"))[0] == ["r1"]
    assert (await _claim(client, t + 150))[0] == []
    assert (await _claim(client, t + 200, "d2"))[0] == ["r2"]
    assert (await _claim(client, t + 300))[0] == ["r3"]
    assert await redis.zcard(f"{keys.due_prefix}rated:echo") == 0


async def test_a_burst_starts_at_once_then_the_rate_holds(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    client = limited_client(make_settings, redis, pg, rate_interval_us=100_000, rate_burst=3)
    for n in range(5):
        await client.enqueue("echo", [n], job_id=f"b{n}")
    t = client.clock.now_ms() + 10
    assert (await _claim(client, t))[0] == ["b0", "b1", "b2"]
    assert (await _claim(client, t + 99))[0] == []
    assert (await _claim(client, t + 100))[0] == ["b3"]


async def test_a_rate_per_key(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore
) -> None:
    client = limited_client(make_settings, redis, pg, rate_interval_us=1_000_000, rate_key="args.0")
    for n, key in enumerate(["a", "a", "b", "b", "c"]):
        await client.enqueue("echo", [key], job_id=f"k{n}")
    t = client.clock.now_ms() + 10
    assert (await _claim(client, t))[0] == ["k0", "k2", "k4"]
    assert (await _claim(client, t + 1000))[0] == ["k1", "k3"]


async def test_requests_reach_a_job_waiting_for_its_rate(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    client = limited_client(make_settings, redis, pg, rate_interval_us=1_000_000)
    for n in range(3):
        await client.enqueue("echo", [n], job_id=f"q{n}")
    t = client.clock.now_ms() + 10
    assert (await _claim(client, t))[0] == ["q0"]
    await client.cancel("q1")
    await client.update("q2", delay=3600)
    assert await redis.zcard(f"{keys.due_prefix}rated:echo") == 0
    assert (await _claim(client, t + 1000))[0] == []


async def test_an_untrusted_rate_counts_as_none(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    client = limited_client(make_settings, redis, pg, rate_interval_us=1_000_000)
    for n in range(3):
        await client.enqueue("echo", [n], job_id=f"u{n}")
        await redis.hset(keys.job(f"u{n}"), "j", "fast")
    await redis.hset(f"{keys.due_prefix}rate:echo", "junk", "1")  # a key of another type
    t = client.clock.now_ms() + 10
    assert (await _claim(client, t))[0] == ["u0", "u1", "u2"]


@pytest.mark.parametrize(
    ("text", "said"),
    [("50/s", None), ("3/m", None), ("1000/h", None), ("20000/s", None),
     ("5000000/s", "at most 1,000,000/s"),
     ("fast", "must look like '50/s'"), ("0/s", "at least 1 start")],
)  # fmt: skip
def test_a_rate_reads_as_documented(text: str, said: str | None) -> None:
    from runner.limits.rates import interval_us  # noqa: PLC0415

    if said is None:
        assert interval_us(text) > 0
    else:
        with pytest.raises(ValueError, match=said):
            interval_us(text)


async def test_rate_sets_of_another_type_are_set_aside(
    make_settings: Callable[..., Settings], redis: Redis, pg: PgStore, keys: Keys
) -> None:
    """A string where the rate's waiting jobs or the wake-ups should be is moved aside
    when a job must wait; the rate goes on."""
    client = limited_client(make_settings, redis, pg, rate_interval_us=100_000)
    await redis.set(f"{keys.due_prefix}rated:echo", "junk")
    for n in range(2):
        await client.enqueue("echo", [n], job_id=f"s{n}")
    t = client.clock.now_ms() + 10
    await redis.set(f"{keys.due_prefix}ratewake", "junk")  # read after the first start
    assert await _claim(client, t) == (["s0"], t + 100)
    assert await redis.get(f"{keys.due_prefix}rated:echo:malformed") == "junk"
    assert await redis.get(f"{keys.due_prefix}ratewake:malformed") == "junk"
    assert (await _claim(client, t + 100))[0] == ["s1"]
