"""Delivering one transition to a sink's endpoint: POSTed, signed, retried with
backoff until it is accepted (a 2xx answer) or its retry budget is spent.

Every try is recorded (attempts.py); a delivery given up becomes a dead letter in
Redis, with its body and the last error, for an operator to replay. A request never
holds a slot while it waits to be retried: `concurrency` bounds the requests in
flight, not the deliveries waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import orjson

from runner.config.notify import NotifySettings
from runner.daemon.resilience import keep_going
from runner.logs import get_logger
from runner.notify.attempts import AttemptsLog
from runner.notify.gate import Gate
from runner.notify.metrics import WebhookMetrics
from runner.notify.retry import RetryPolicy
from runner.notify.signing import headers
from runner.redact import redact_text
from runner.store import AttemptRow, SinkStore

log = get_logger()

ANSWER_KEPT = 200  # characters of a refusing endpoint's answer kept in the error


@dataclass(frozen=True)
class Delivery:
    """One transition to send: its ids, the body as sent, and the stream entry that
    holds it (acknowledged once all of that entry's deliveries are done)."""

    event_id: str
    job_id: str
    seq: int
    body: bytes
    entry: tuple[str, str]  # (its stream: a queue, or the replays; entry id), see lanes.py
    at_ms: int = 0  # when the transition happened (0: not known, a replay)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (timeout, connection refused...)
    error: str | None
    duration_ms: int

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Poster:
    """One sink's HTTP side: a kept-alive session, the retry loop, the records."""

    def __init__(
        self,
        sink: NotifySettings,
        store: SinkStore,
        attempts: AttemptsLog,
        daemon: str,
        *,
        wall: Callable[[], float] = time.time,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.sink = sink
        self.store = store
        self.attempts = attempts
        self.daemon = daemon
        self.wall = wall
        self.metrics = metrics
        self.policy = RetryPolicy.of(sink)
        self.rng = random.Random()
        self.gate = Gate(sink.concurrency)
        self.session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.dead = 0
        # The endpoint looks down after `concurrency` failures in a row: the gate
        # then holds every delivery back for a pause doubling at each such run, up to
        # backoff_max, so an outage costs a few requests per pause, not one per
        # waiting delivery (CPU the daemon's jobs need).
        self._failed_in_row = 0
        self._closings = 0

    async def open(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.sink.timeout),
                connector=aiohttp.TCPConnector(limit=self.sink.concurrency),
            )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def deliver(self, delivery: Delivery) -> bool:
        """Try until accepted (True) or the budget is spent (False: dead-lettered).
        The budget, `retry_for`, counts from the transition itself when its time is
        known: a delivery taken over from a dead daemon, or read late after an
        outage, does not start afresh."""
        first = self._first_try(delivery)
        failures = 0
        last: Answer | None = None
        while True:
            async with self.gate:
                if last is not None and self._gave_up_waiting(first):
                    answer = last  # waited out its budget behind a down endpoint
                else:
                    answer = await self.post(delivery)
                    self._note(answer)
            if answer.accepted:
                self._record(delivery, failures + 1, answer, "delivered")
                self.delivered += 1
                return True
            failures += 1
            last = answer
            retry_at = self.policy.next_try(first, time.monotonic(), failures, self.rng)
            self._record(delivery, failures, answer, "failed" if retry_at else "dead")
            if retry_at is None:
                await self._dead_letter(delivery, failures, answer)
                return False
            await asyncio.sleep(max(0.0, retry_at - time.monotonic()))

    def _first_try(self, delivery: Delivery) -> float:
        """The budget's start, on the monotonic clock: the transition's time if known."""
        now = time.monotonic()
        if not delivery.at_ms:
            return now  # a replay: a fresh budget
        return now - min(max(self.wall() - delivery.at_ms / 1000, 0.0), self.policy.retry_for)

    def _gave_up_waiting(self, first: float) -> bool:
        """Past its budget while the endpoint still fails: dead-lettered at its turn
        without another request, so a long outage drains the backlog (and the stream
        it holds) instead of probing one delivery per pause."""
        return self._closings > 0 and time.monotonic() >= first + self.policy.retry_for

    def _note(self, answer: Answer) -> None:
        if answer.accepted:
            self._failed_in_row = self._closings = 0
            self.gate.open()
            return
        self._failed_in_row += 1
        if self._failed_in_row >= self.sink.concurrency:
            self._failed_in_row = 0
            self._closings += 1
            pause = min(self.policy.cap, self.policy.first * 2 ** min(self._closings - 1, 62))
            self.gate.close_for(pause)

    async def post(self, delivery: Delivery) -> Answer:
        """One request; whatever goes wrong is the answer's error, never raised."""
        await self.open()
        assert self.session is not None
        began = time.monotonic()
        sent = headers(self.sink.secret, delivery.event_id, int(self.wall()), delivery.body)
        try:
            async with self.session.post(self.sink.url, data=delivery.body, headers=sent) as r:
                text = await r.text(errors="replace") if not 200 <= r.status < 300 else ""
                error = None if not text and 200 <= r.status < 300 else _refusal(r.status, text)
                return Answer(r.status, error, _ms_since(began))
        except TimeoutError:
            return Answer(None, f"no answer within {self.sink.timeout}s", _ms_since(began))
        except (aiohttp.ClientError, OSError) as exc:
            return Answer(None, redact_text(f"{type(exc).__name__}: {exc}"), _ms_since(began))

    def _record(self, delivery: Delivery, attempt: int, answer: Answer, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.tried(self.sink.name, outcome)
            if outcome == "delivered" and delivery.at_ms:
                self.metrics.delivered(self.sink.name, self.wall() - delivery.at_ms / 1000)
        self.attempts.add(AttemptRow(
            self.sink.name, delivery.event_id, delivery.job_id, delivery.seq, attempt,
            int(self.wall() * 1000), self.daemon, answer.status, answer.error,
            answer.duration_ms, outcome,
        ))  # fmt: skip

    async def _dead_letter(self, delivery: Delivery, tries: int, answer: Answer) -> None:
        letter = {
            "event_id": delivery.event_id, "job_id": delivery.job_id,
            "seq": str(delivery.seq), "body": delivery.body.decode(),
            "error": answer.error or f"HTTP {answer.status}", "tries": str(tries),
            "at": str(int(self.wall() * 1000)),
        }  # fmt: skip
        await keep_going(f"notify {self.sink.name}", lambda: self.store.dead_letter([letter]))
        self.dead += 1
        log.error(
            "webhook delivery dead-lettered", sink=self.sink.name, job_id=delivery.job_id,
            event_id=delivery.event_id, tries=tries, error=letter["error"],
        )  # fmt: skip


def _refusal(status: int, text: str) -> str:
    short = text[:ANSWER_KEPT].strip()
    return f"HTTP {status}" + (f": {short}" if short else "")


def _ms_since(began: float) -> int:
    return int((time.monotonic() - began) * 1000)


def body_of(value: object) -> bytes:
    return orjson.dumps(value)
