"""Input that used to crash or mislead: due times, durations, task imports, URLs, job ids."""

from __future__ import annotations

import math

import pytest

from runner.durations import parse_duration
from runner.jobs import rfc3339

LATEST = "9999-12-31T23:59:59.999Z"
LATEST_MS = 253_402_300_799_999


# Durations and RFC 3339 times


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, "9" * 400 + "d", "1" + "0" * 330 + "s"]
)
def test_durations_must_be_finite(bad: object) -> None:
    """An infinite or NaN duration (a float, or digits too many for a float) is a
    ValueError that says a finite duration is wanted, not a value passed on."""
    with pytest.raises(ValueError, match="finite"):
        parse_duration(bad)


def test_rfc3339_shows_out_of_range_times_as_raw_milliseconds() -> None:
    """A stored time no datetime can hold (too far ahead or behind, or beyond what the
    platform converts) comes out as its raw ms value instead of raising."""
    assert rfc3339(LATEST_MS) == LATEST
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(None) is None
    for ms in (LATEST_MS + 1, 99_999_999 * 86_400_000, 10**30, -(10**15), -(10**40)):
        shown = rfc3339(ms)
        assert shown is not None and str(ms) in shown, (ms, shown)
