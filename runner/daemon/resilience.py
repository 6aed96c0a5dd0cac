"""One policy for every service that meets an error: log it by kind, pause, go on.

A daemon is never stopped by what happens around it: a server that is down,
restarting, read-only or out of memory, a deadlock, a script the server
refuses, data that another program wrote. Each service loop catches the
failure of one step, logs it here with its context, sleeps a growing pause and
tries again. Cancellation is never caught: it is how the daemon stops them.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runner.errors import StoreError, StoreUnavailable
from runner.logs import get_logger

log = get_logger()

T = TypeVar("T")


class Backoff:
    """A pause that doubles after each failure, up to `cap`, and resets on success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first
        self.failures = 0

    def reset(self) -> None:
        self.delay = self.first
        self.failures = 0

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        self.failures += 1
        return delay

    async def pause(self, service: str, exc: Exception, **context: Any) -> None:
        """Log why `service` failed a step, then sleep before the next try."""
        delay = self.next()
        report(service, exc, retry_in_s=delay, failures=self.failures, **context)
        await asyncio.sleep(delay)


def report(service: str, exc: Exception, **context: Any) -> None:
    """One log line for a failed step: a warning for a server that is away, an
    error (with the traceback when runner's own code raised) for anything else."""
    if isinstance(exc, StoreUnavailable):
        log.warning(f"{service}: {exc.server or 'a server'} unavailable; retrying",
                    error=str(exc), **context)  # fmt: skip
    elif isinstance(exc, StoreError):
        log.error(f"{service}: request refused; retrying", error=str(exc), **context)
    else:
        log.error(
            f"{service}: unexpected error; retrying",
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)[-12:]),
            **context,
        )


async def every(
    service: str,
    step: Callable[[], Awaitable[object]],
    period: Callable[[], float],
    *,
    retry: Callable[[], float] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """The periodic services' policy: `step` every `period()` seconds, for ever. A
    failed step is logged and the next comes after `retry()` seconds (the period by
    default), after `on_failure()`; the service never ends on its own."""
    while True:
        try:
            await step()
            delay = period()
        except Exception as exc:  # the policy: log, go on at the next step
            delay = retry() if retry is not None else period()
            report(service, exc, retry_in_s=delay)
            if on_failure is not None:
                on_failure()
        await asyncio.sleep(delay)


async def keep_going(service: str, step: Callable[[], Awaitable[T]], cap: float = 1.0) -> T:
    """Run `step` until it succeeds, pausing (at most `cap` s) between failures."""
    backoff = Backoff(cap=cap)
    while True:
        try:
            return await step()
        except Exception as exc:  # the policy: log, pause, try again
            await backoff.pause(service, exc)
