"""How the command line's text shows a time: RFC 3339 with milliseconds in UTC
(`2026-12-07T03:42:27.528Z`), or, with --local, in this machine's zone (TZ) with its
offset (`2026-12-07T09:12:27.528+05:30`).

Documents (every --json output, the client, the API) always carry RFC 3339 UTC, so
scripts never depend on where they run; only the text a person reads follows
--local. Each renderer passes every time it prints through one TimeText, so `jobs`,
`show`, `status`, `cron` and `logs` cannot drift apart again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from runner.jobs import rfc3339_at


@dataclass(frozen=True)
class TimeText:
    """UTC (the default), or the local zone when `local`."""

    local: bool = False

    def __call__(self, text: str | None) -> str:
        """An RFC 3339 time as this style shows it, "-" for None. Text that is no aware
        ISO 8601 time (a value someone else wrote into Redis, a log line of another
        program) is shown as it is: a reader never fails on it."""
        if text is None:
            return "-"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        if moment.tzinfo is None:
            return text
        return rfc3339_at(moment.astimezone(None if self.local else UTC))

    def own_zone(self, text: str | None) -> str:
        """A time that means most in its own zone (a cron schedule's next fires, in
        the schedule's time zone): kept there, unless --local asks for the local one."""
        return self(text) if self.local else text or "-"


UTC_TEXT = TimeText()
