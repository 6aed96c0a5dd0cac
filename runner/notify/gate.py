"""The way to a sink's endpoint: at most `concurrency` requests in flight, and none at
all while the endpoint is paused after failing.

During an outage thousands of deliveries may be waiting. They wait in one queue,
in order, and a pause's end lets through only as many as there are free slots:
one probe per slot, not a wake-up of every waiting delivery (which would cost the
daemon's jobs their CPU every time a pause ends). Once a request succeeds the way
is open and the queue drains as fast as the slots free up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from types import TracebackType


class Gate:
    def __init__(self, slots: int) -> None:
        self.free = slots
        self.closed_until = 0.0  # monotonic; nothing goes through before it
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def close_for(self, seconds: float) -> None:
        """Hold every request back for `seconds` (the endpoint looks down)."""
        self.closed_until = time.monotonic() + seconds
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self.open)

    def open(self) -> None:
        """The pause is over (its timer), or the endpoint answered: let requests by.
        (The timer may fire a hair early by the loop's clock: it ends the pause
        itself rather than compare clocks.)"""
        if self.closed_until:
            self.closed_until = 0.0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._let_through()

    async def __aenter__(self) -> None:
        if self.free > 0 and not self._waiting and not self._closed():
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # given a slot just as it was cancelled: pass it on
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        self.free += 1
        self._let_through()

    def _closed(self) -> bool:
        return time.monotonic() < self.closed_until

    def _let_through(self) -> None:
        while self.free > 0 and self._waiting and not self._closed():
            turn = self._waiting.popleft()
            if not turn.done():
                self.free -= 1
                turn.set_result(None)
