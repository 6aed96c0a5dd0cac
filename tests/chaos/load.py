"""A steady stream of mixed jobs through runner's own client, every accepted id kept.

Jobs go in small batches (one `enqueue_many` round trip each) at a fixed rate.
A batch Redis did not answer is sent again with the same ids (enqueue is
idempotent by id), so a job counts as accepted exactly when the client saw it
accepted: the audit holds runner to those and to no others.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.client.client import Client
from runner.jobs import NewJob

TICK_S = 0.05
MAX_BATCH = 200


@dataclass(frozen=True)
class Kind:
    """One sort of job in the mix: its task, its arguments, how often, how delayed."""

    task: str
    weight: int
    args: Callable[[random.Random, str], list[Any]]
    delay_s: tuple[float, float] = (0.0, 0.0)
    after: int = 0  # how many recently accepted jobs it depends on (it runs anyway)


def _ms(low: float, high: float) -> Callable[[random.Random, str], list[Any]]:
    return lambda rng, job_id: [job_id, round(rng.uniform(low, high), 1)]


def _flaky(rng: random.Random, job_id: str) -> list[Any]:
    # Fails until 150-400 ms from now: the first try or two fail, a retry succeeds.
    return [job_id, int(time.time() * 1000 + rng.uniform(150, 400))]


# Mostly short work, some long enough that a killed daemon always leaves jobs behind.
MIX: tuple[Kind, ...] = (
    Kind("async_work", 26, _ms(1, 20)),
    Kind("io_work", 16, _ms(5, 40)),
    Kind("cpu_work", 6, _ms(5, 25)),
    Kind("async_work", 5, _ms(200, 1000)),
    Kind("io_work", 3, _ms(100, 500)),
    Kind("cpu_work", 2, _ms(100, 300)),
    Kind("flaky_io", 8, _flaky),
    Kind("flaky_async", 6, _flaky),
    Kind("always_fails", 4, lambda rng, job_id: [job_id]),
    Kind("async_work", 14, _ms(1, 20), delay_s=(0.2, 3.0)),
    Kind("io_work", 6, _ms(5, 40), delay_s=(0.2, 3.0)),
    Kind("cpu_work", 6, _ms(5, 25), delay_s=(0.2, 3.0)),
    # Jobs that wait for others, blocked: released by the end of each (a success, a
    # failure, an expired lease's last attempt), whichever daemon ends it.
    Kind("async_work", 5, _ms(1, 20), after=3),
    Kind("io_work", 2, _ms(5, 40), after=1),
)
RECENT = 200  # a dependent picks its dependencies among the last jobs accepted


class LoadGenerator:
    def __init__(
        self,
        client: Client,
        *,
        rate: float,
        total: int,
        rng: random.Random,
        mix: tuple[Kind, ...] = MIX,
    ) -> None:
        self.client = client
        self.rate = rate
        self.total = total
        self.rng = rng
        self.mix = mix
        self.weights = [kind.weight for kind in mix]
        self.accepted: list[str] = []
        self.tasks: dict[str, str] = {}  # job id -> task, for accepted jobs
        self.made = 0
        self.failures: Counter[str] = Counter()  # refused round trips, by error
        self._unsent: list[NewJob] = []
        self.started = 0.0
        self.finished = 0.0

    def _new_job(self) -> NewJob:
        kind = self.rng.choices(self.mix, self.weights)[0]
        job_id = f"{self.made:06d}-{uuid.uuid4().hex[:12]}"
        self.made += 1
        delay = self.rng.uniform(*kind.delay_s) if kind.delay_s[1] else None
        recent = self.accepted[-RECENT:]
        after = self.rng.sample(recent, min(kind.after, len(recent))) if kind.after else []
        return self.client.new_job(kind.task, kind.args(self.rng, job_id), job_id=job_id,
                                   delay=delay, depends_on=after or None,
                                   on_failure="run" if after else None)  # fmt: skip

    async def _send(self, jobs: list[NewJob]) -> bool:
        try:
            ids = await self.client.enqueue_many(jobs)
        except Exception as exc:  # Redis away: count it, the same jobs go again
            self.failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            return False
        self.accepted.extend(ids)
        self.tasks.update((job.id, job.task) for job in jobs)
        return True

    async def run(self, grace_s: float = 60.0) -> None:
        """Enqueue `total` jobs at `rate` per second; then keep re-sending what was
        refused for at most `grace_s` more seconds."""
        self.started = time.monotonic()
        while self.made < self.total or self._unsent:
            elapsed = time.monotonic() - self.started
            if self.made >= self.total and elapsed > self.total / self.rate + grace_s:
                break
            due = min(self.total, int(elapsed * self.rate) + 1)
            while self.made < due and len(self._unsent) < MAX_BATCH:
                self._unsent.append(self._new_job())
            if self._unsent:
                batch, self._unsent = self._unsent[:MAX_BATCH], self._unsent[MAX_BATCH:]
                if not await self._send(batch):
                    self._unsent = batch + self._unsent
            await asyncio.sleep(TICK_S)
        self.finished = time.monotonic()

    @property
    def achieved_rate(self) -> float:
        took = (self.finished or time.monotonic()) - self.started
        return len(self.accepted) / took if took > 0 else 0.0
