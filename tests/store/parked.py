"""What the parking tests share: a horizon, a clock that lives later, a client that
parks, and a daemon's parking living at such a time."""

from __future__ import annotations

import time

from runner.client.client import Client
from runner.store.parking import Parking
from runner.store.postgres.store import PgStore

HORIZON_S = 60.0
DAY_S = 86400.0


class LaterClock:
    """The system clock moved `ahead_s` into the future: a promoter that lives then."""

    def __init__(self, ahead_s: float) -> None:
        self.ahead_s = ahead_s

    def now(self) -> float:
        return time.time() + self.ahead_s

    def now_ms(self) -> int:
        return int(self.now() * 1000)


def parking_at(client: Client, ahead_s: float) -> Parking:
    """A daemon's parking (its promoter's), living `ahead_s` from now."""

    async def history_store() -> PgStore | None:
        return client.pg

    return Parking(client.store, history_store, HORIZON_S, LaterClock(ahead_s), "daemon:test")
