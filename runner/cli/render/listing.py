"""`runner jobs` as text: a table of the page, and the command for the next one."""

from __future__ import annotations

import shlex
from typing import Any

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText
from runner.client.listing import REDIS_DOWN_NOTE, ListQuery, Page
from runner.jobs import rfc3339

_COLUMNS = ("id", "task", "queue", "state", "attempt", "due", "created", "updated")


def _cells(job: dict[str, Any], times: TimeText) -> tuple[str, ...]:
    return (
        job["id"],
        job["task"] or "-",
        job.get("queue") or "default",
        job["state"],
        str(job["attempt"]),
        times(job["due_at"]),
        times(job["created_at"]),
        times(job["updated_at"]),
    )


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def next_page_command(
    query: ListQuery, cursor: str, command: str = "runner jobs", times: TimeText = UTC_TEXT
) -> str:
    """The command that prints the next page: the same filters, absolute times (a
    relative --since would have moved; in the page's style, which --since reads back),
    and the cursor."""
    words = [command]
    for flag, value in (("--state", query.state), ("--task", query.task), ("--queue", query.queue)):
        if value is not None:
            words.append(f"{flag} {shlex.quote(value)}")
    for flag, ms in (("--since", query.since_ms), ("--until", query.until_ms)):
        if ms is not None:
            words.append(f"{flag} {times(rfc3339(ms))}")
    words += [f"--limit {query.limit}", f"--after {cursor}"]
    if times.local:
        words.append("--local")
    return " ".join(words)


def render(
    page: Page, as_json: bool, command: str = "runner jobs", times: TimeText = UTC_TEXT
) -> str:
    """JSON for a script, or a table for a person (times as `times` shows them) with
    the command for the next page; `command` is how the caller invoked the listing."""
    if as_json:
        return orjson.dumps(page.as_json()).decode()
    if page.jobs:
        lines = _table([_COLUMNS, *(_cells(job, times) for job in page.jobs)])
    else:
        lines = ["no jobs on this page" if page.query.after else "no jobs match"]
    if page.next_cursor is not None:
        following = next_page_command(page.query, page.next_cursor, command, times)
        lines.append(f"next page: {following}")
    if not page.live:
        lines.append(f"note: {REDIS_DOWN_NOTE}")
    return "\n".join(lines)
