"""Cron schedules as pure functions: DST in two zones, misfire policies, validation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from runner.config.settings import parse_settings
from runner.cron import Schedule, tick_id, ticks_to_fire
from runner.errors import ConfigError

NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
# 2026: New York springs forward on Mar 8 (02:00 -> 03:00), falls back on Nov 1
# (02:00 -> 01:00); Berlin on Mar 29 (02:00 -> 03:00) and Oct 25 (03:00 -> 02:00).
CHANGES = {
    NEW_YORK: (datetime(2026, 3, 8), datetime(2026, 11, 1)),
    BERLIN: (datetime(2026, 3, 29), datetime(2026, 10, 25)),
}


def fires_on(schedule: Schedule, day: datetime) -> list[datetime]:
    """Local fire times during one local calendar day."""
    zone = ZoneInfo(schedule.timezone)
    start = day.replace(tzinfo=zone).astimezone(UTC) - timedelta(microseconds=1)
    end = (day + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    return [t.astimezone(zone) for t in schedule.between(start, end)]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_daily_0230_fires_once_on_both_change_days(zone: str) -> None:
    """02:30 is skipped by spring-forward (fires once, at the jump: 03:00) and, in Berlin,
    repeated by fall-back (fires once, the first time)."""
    spring, fall = CHANGES[zone]
    schedule = Schedule("30 2 * * *", zone)
    spring_fires = fires_on(schedule, spring)
    assert [t.strftime("%H:%M") for t in spring_fires] == ["03:00"]
    fall_fires = fires_on(schedule, fall)
    assert [t.strftime("%H:%M") for t in fall_fires] == ["02:30"]
    assert fall_fires[0].fold == 0  # the first of the two 02:30s
    for ordinary in (spring - timedelta(days=1), fall + timedelta(days=1)):
        assert [t.strftime("%H:%M") for t in fires_on(schedule, ordinary)] == ["02:30"]


def test_repeated_wall_clock_time_fires_once_in_new_york() -> None:
    """New York repeats 01:00-01:59 on its fall-back day: a daily 01:30 fires once."""
    fires = fires_on(Schedule("30 1 * * *", NEW_YORK), CHANGES[NEW_YORK][1])
    assert len(fires) == 1 and fires[0].utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
@pytest.mark.parametrize("change", [0, 1])
def test_every_15_minutes_keeps_real_time_spacing(zone: str, change: int) -> None:
    """*/15 fires every 15 real minutes through both changes: no gap, no double."""
    day = CHANGES[zone][change]
    fires = [t.astimezone(UTC) for t in fires_on(Schedule("*/15 * * * *", zone), day)]
    gaps = {b - a for a, b in itertools.pairwise(fires)}  # in UTC: real time
    assert gaps == {timedelta(minutes=15)}
    hours = 23 if change == 0 else 25
    assert len(fires) == hours * 4


def test_seconds_field_and_aliases() -> None:
    """6 fields put seconds first; aliases work; @hourly keeps real-time spacing."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    every_20s = Schedule("*/20 * * * * *").between(start, start + timedelta(minutes=1))
    assert [t.second for t in every_20s] == [20, 40, 0]
    assert Schedule("@daily", "UTC").next_after(start) == datetime(2026, 1, 2, tzinfo=UTC)
    assert not Schedule("@hourly", BERLIN).wall_clock
    assert Schedule("0 9 * * 1-5", BERLIN).wall_clock


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("61 * * * *", "UTC", "invalid cron expression '61 * * * *'"),
        ("* * *", "UTC", "has 3 fields"),
        ("* * * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_schedules_say_what_is_wrong(expression: str, zone: str, message: str) -> None:
    """Each problem names the expression or the zone."""
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        Schedule(expression, zone)


def test_misfire_policies() -> None:
    """Three missed per-minute ticks: skip fires none, once the latest, all three."""
    schedule = Schedule("* * * * *")
    last = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    now = last + timedelta(minutes=3, seconds=30)
    grace = timedelta(hours=1)
    assert ticks_to_fire(schedule, last, now, "skip", grace) == []
    assert ticks_to_fire(schedule, last, now, "once", grace) == [last + timedelta(minutes=3)]
    assert len(ticks_to_fire(schedule, last, now, "all", grace)) == 3
    assert ticks_to_fire(schedule, last, now, "all", timedelta(seconds=60)) == [
        last + timedelta(minutes=3)
    ]
    on_time = last + timedelta(minutes=1, milliseconds=300)
    assert ticks_to_fire(schedule, last, on_time, "skip", grace) == [last + timedelta(minutes=1)]


def test_tick_ids_are_deterministic() -> None:
    """The same tick gives the same id in any zone representation."""
    tick = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert tick_id("report", tick) == "cron:report:2026-03-08T07:00:00Z"
    assert tick_id("report", tick.astimezone(ZoneInfo(NEW_YORK))) == tick_id("report", tick)


def test_config_names_the_bad_schedule() -> None:
    """check-config reports each bad schedule by name and key."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "tasks": {"t": {"target": "tests.tasks:echo"}},
                "cron": {
                    "bad_expr": {"schedule": "nope", "task": "t"},
                    "bad_zone": {"schedule": "* * * * *", "task": "t", "timezone": "X/Y"},
                    "bad_task": {"schedule": "* * * * *", "task": "ghost"},
                    "bad_policy": {"schedule": "* * * * *", "task": "t", "misfire": "twice"},
                },
            },
            "c.toml",
            {},
        )
    text = "\n".join(caught.value.problems)
    assert "cron.bad_expr.schedule: " in text
    assert "cron.bad_zone.timezone: unknown time zone 'X/Y'" in text
    assert "cron.bad_task.task: unknown task 'ghost' (declared: t)" in text
    assert "cron.bad_policy.misfire: must be one of skip, once, all" in text
