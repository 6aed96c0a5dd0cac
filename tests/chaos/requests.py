"""An operator gone wild: random requests on random jobs, as fast as one client can.

Each round picks a few distinct jobs (mostly recent ones, which are waiting or
running, some from anywhere, which have ended), gives each a random request
(pause, resume, cancel, retry, delete, update) and sends one batch per kind,
the kinds concurrently. Rounds follow one another, so the requests on one job
never overlap in time: for every applied request the log keeps when it was
sent and when it returned, in the order they were made.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.client.client import Client
from runner.states import REQUESTS

RECENT = 400  # the newest jobs, most of them still waiting or running
PER_ROUND = 24
WEIGHTS = {"pause": 25, "resume": 25, "cancel": 15, "retry": 15, "update": 15, "delete": 5}
# A deletion is for good: only one job in DELETABLE may be deleted, so that most jobs
# live through the whole race however many rounds it takes.
DELETABLE = 10


@dataclass(frozen=True)
class Applied:
    """A request that applied: when it was sent (whole ms, rounded down, as the
    daemons' clock reads) and when it returned (ms)."""

    action: str
    sent_ms: int
    returned_ms: float


@dataclass
class Requester:
    client: Client
    rng: random.Random
    candidates: Callable[[], Sequence[str]]  # the ids accepted so far, oldest first
    applied: defaultdict[str, list[Applied]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, outcome)
    deleted: set[str] = field(default_factory=set)
    rounds: int = 0
    stopping: bool = False

    async def run(self) -> None:
        """Until `stopping`: round after round, yielding to the loop in between."""
        while not self.stopping:
            picked = self._pick()
            if not picked:
                await asyncio.sleep(0.01)
                continue
            groups: defaultdict[str, list[str]] = defaultdict(list)
            for job_id in picked:
                groups[self._action(job_id)].append(job_id)
            await asyncio.gather(
                *(
                    self.request(action, ids, **self._changes(action))
                    for action, ids in groups.items()
                )
            )
            self.rounds += 1
            await asyncio.sleep(0)

    def _pick(self) -> list[str]:
        ids = self.candidates()
        if not ids:
            return []
        recent = ids[-RECENT:]
        picked = {
            self.rng.choice(recent) if self.rng.random() < 0.75 else self.rng.choice(ids)
            for _ in range(PER_ROUND)
        }
        return [job_id for job_id in picked if job_id not in self.deleted]

    def _action(self, job_id: str) -> str:
        while True:
            action = self.rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
            if action != "delete" or zlib.crc32(job_id.encode()) % DELETABLE == 0:
                return action

    def _changes(self, action: str) -> dict[str, Any]:
        if action != "update":
            return {}
        return self.rng.choice(
            [
                {"kwargs": {"round": self.rounds}},
                {"delay": round(self.rng.uniform(0, 0.3), 3)},
                {"retries": self.rng.randint(0, 2)},
                {"timeout": 5.0},
            ]
        )

    async def request(self, action: str, ids: Sequence[str], **changes: Any) -> None:
        """One batch of one kind of request; every result is counted, the applied ones
        logged for their jobs."""
        assert action in REQUESTS
        sent_ms = math.floor(time.time() * 1000)
        results = await self.client.request(action, ids, **changes)
        returned_ms = time.time() * 1000
        for result in results:
            if result.ok:
                self.outcomes[action, "applied"] += 1
                self.applied[result.job_id].append(Applied(action, sent_ms, returned_ms))
                if action == "delete":
                    self.deleted.add(result.job_id)
            else:
                self.outcomes[action, f"refused ({result.state})"] += 1

    def counts(self, outcome: str = "applied") -> dict[str, int]:
        return {action: self.outcomes[action, outcome] for action in REQUESTS}
