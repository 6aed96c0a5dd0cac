"""`runner cron` as text: each schedule, its policies, its last and next fires."""

from __future__ import annotations

from typing import Any

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText


def render(docs: list[dict[str, Any]], as_json: bool, times: TimeText = UTC_TEXT) -> str:
    """JSON for a script, or lines for a person: the next fires in the schedule's own
    zone (unless --local), the last fire as `times` shows it."""
    if as_json:
        return orjson.dumps(docs).decode()
    if not docs:
        return "no cron schedules in the config"
    lines = []
    for d in docs:
        last = d["last"]
        lines += [
            f"{d['name']}  {d['schedule']!r} ({d['timezone']})  task {d['task']}",
            f"  misfire {d['misfire']} (grace {d['misfire_grace_s']:g}s), overlap {d['overlap']}",
            "  last     "
            + (
                f"{times(last['tick'])}  {last['job_id']}  {last['state'] or 'expired'}"
                if last
                else "-"
            ),
            f"  next     {', '.join(map(times.own_zone, d['next']))}",
        ]
    return "\n".join(lines)
