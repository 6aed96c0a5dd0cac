"""Input that used to crash or mislead: due times, durations, task imports, URLs, job ids."""

from __future__ import annotations

import math

import pytest

from runner.durations import parse_duration

# Durations and RFC 3339 times


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, "9" * 400 + "d", "1" + "0" * 330 + "s"]
)
def test_durations_must_be_finite(bad: object) -> None:
    """An infinite or NaN duration (a float, or digits too many for a float) is a
    ValueError that says a finite duration is wanted, not a value passed on."""
    with pytest.raises(ValueError, match="finite"):
        parse_duration(bad)
