"""Backoff between attempts: a pure function of the attempt number and a random draw."""

from __future__ import annotations

import random

from runner.config.settings import TaskSettings


def backoff_seconds(task: TaskSettings, attempt: int, rand: float | None = None) -> float:
    """Exponential delay after `attempt` failed (1-based), capped, with +/- jitter.

    `rand` in [0, 1) is injectable so tests can pin the jitter.
    """
    draw: float = random.random() if rand is None else rand
    base: float = min(task.backoff * 2.0 ** (attempt - 1), task.backoff_max)
    spread = base * task.backoff_jitter
    return max(0.0, base - spread + 2 * spread * draw)
