"""The gate to an endpoint: a pause's end lets through one request per slot, not every
waiting delivery at once, and a success opens the way for the rest in order."""

from __future__ import annotations

import asyncio

from runner.notify.gate import Gate
from tests.waiting import eventually


async def test_a_pause_lets_through_one_request_per_slot_when_it_ends() -> None:
    """A thousand deliveries wait behind a paused gate of 4 slots: none passes during
    the pause, 4 pass at its end while the others stay queued, and once the way is
    open they all pass, in the order they came."""
    gate = Gate(4)
    gate.close_for(0.5)  # longer than the first look below takes on a loaded machine
    passed: list[int] = []
    release = asyncio.Event()

    async def deliver(n: int) -> None:
        async with gate:
            passed.append(n)
            await release.wait()

    tasks = [asyncio.create_task(deliver(n)) for n in range(1000)]
    await asyncio.sleep(0.05)
    assert passed == [] and gate.waiting == 1000
    await eventually(lambda: passed, timeout=5, what="the pause ending")
    await asyncio.sleep(0.05)  # any more than one a slot would pass now
    assert passed == [0, 1, 2, 3] and gate.waiting == 996
    gate.open()
    release.set()
    await asyncio.gather(*tasks)
    assert passed == list(range(1000)) and gate.free == 4


async def test_a_cancelled_waiter_gives_its_turn_on() -> None:
    """A delivery cancelled while queued (its sink stopping) takes no slot with it."""
    gate = Gate(1)
    async with gate:
        waiter = asyncio.create_task(gate.__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
    await asyncio.sleep(0)
    assert gate.free == 1
    async with gate:
        assert gate.free == 0
