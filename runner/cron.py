"""Cron schedules as pure functions of time: fire times, DST rules, misfire policy.

Expressions have 5 fields (minute hour day month weekday), 6 with seconds first
(second minute hour day month weekday), or an alias (@hourly, @daily, @weekly,
@monthly, @yearly). Times are computed in the schedule's IANA time zone.

Daylight-saving rules:
- A schedule whose hour field is `*` (every N seconds or minutes, @hourly)
  fires at every instant whose local time matches, so it keeps real-time
  spacing through a change: 01:45 -> 03:00 across a spring-forward is 15
  minutes, and the repeated hour of a fall-back fires again.
- A schedule with fixed hours (02:30 daily, @daily) names a wall-clock time:
  a time that a spring-forward skips fires once, right after the jump; a time
  that a fall-back repeats fires once, the first time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

MISFIRE_AFTER = timedelta(seconds=1)  # a tick later than this counts as missed
MAX_PENDING = 1000  # "all" never enqueues more missed ticks than this at once
MISFIRE_POLICIES = ("skip", "once", "all")
OVERLAP_POLICIES = ("allow", "skip")


def zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError for anything else. A folder of the zone database
    ('Europe') or an over-long name fails as an OSError inside ZoneInfo: still a bad
    name to the user, not a file problem."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris'"
        ) from None


def check_expression(expression: str) -> None:
    """ValueError saying what is wrong with the expression itself. It does not depend
    on the time zone, so a config check reports a bad schedule and a bad zone together."""
    text = expression.strip()
    fields = text.split()
    if not text.startswith("@") and len(fields) not in (5, 6):
        raise ValueError(
            f"{expression!r} has {len(fields)} fields; use 5 (minute hour day month weekday) "
            "or 6 with seconds first, or an alias like @hourly"
        )
    try:
        croniter(text, datetime.now(UTC), second_at_beginning=len(fields) == 6)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None


class Schedule:
    """A parsed expression in a time zone; yields fire times as UTC datetimes."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = expression.strip()
        self.timezone = timezone
        self.zone = zone(timezone)
        check_expression(expression)
        fields = self.expression.split()
        self.has_seconds = len(fields) == 6
        hour_field = fields[2 if self.has_seconds else 1] if len(fields) > 1 else ""
        self.wall_clock = self.expression not in ("@hourly",) and hour_field != "*"

    def ticks_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after `after` (aware), in order, as UTC datetimes."""
        local = after.astimezone(self.zone)
        it = croniter(self.expression, local, second_at_beginning=self.has_seconds)
        while True:
            tick: datetime = it.get_next(datetime)
            if self.wall_clock and tick.astimezone(self.zone).fold == 1:
                continue  # the repeat of a wall-clock time in a fall-back: fire once
            if tick > after:
                yield tick.astimezone(UTC)

    def next_after(self, after: datetime) -> datetime:
        return next(self.ticks_after(after))

    def between(self, start: datetime, end: datetime, limit: int = MAX_PENDING) -> list[datetime]:
        """Fire times in (start, end], at most `limit` (the latest ones)."""
        found: list[datetime] = []
        for tick in self.ticks_after(start):
            if tick > end:
                break
            found.append(tick)
            if len(found) > limit:
                found.pop(0)
        return found


def ticks_to_fire(
    schedule: Schedule,
    last_tick: datetime,
    now: datetime,
    misfire: str,
    misfire_grace: timedelta,
) -> list[datetime]:
    """Which ticks in (last_tick, now] to fire now.

    A tick no more than MISFIRE_AFTER late is on time and always fires. Older
    ones were missed (no daemon ran, or the loop was stalled): `skip` drops
    them, `once` fires only the latest pending tick, `all` fires each one.
    Ticks older than `misfire_grace` are dropped whatever the policy.
    """
    pending = schedule.between(max(last_tick, now - misfire_grace - MISFIRE_AFTER), now)
    pending = [t for t in pending if now - t <= misfire_grace or now - t <= MISFIRE_AFTER]
    if not pending:
        return []
    if misfire == "all":
        return pending
    if misfire == "once":
        return pending[-1:]
    return [t for t in pending if now - t <= MISFIRE_AFTER]


def tick_id(name: str, tick: datetime) -> str:
    """The deterministic job id of a tick: any number of daemons enqueue it once."""
    stamp = tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"cron:{name}:{stamp}Z"
