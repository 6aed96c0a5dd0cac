"""`runner show` as text: the job's fields, then its history a row per transition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText

SHOWN_CHARS = 200  # of each payload in the text view, unless --full


def _abbreviated(full: bool) -> Callable[[Any], str]:
    """JSON text of a value; cut to SHOWN_CHARS with its size said, unless `full`."""

    def dump(value: Any) -> str:
        text = orjson.dumps(value).decode()
        if full or len(text) <= SHOWN_CHARS:
            return text
        size = len(text.encode())
        return f"{text[:SHOWN_CHARS]}… ({size:,} bytes in all; --full shows everything)"

    return dump


def show_text(doc: dict[str, Any], full: bool = False, times: TimeText = UTC_TEXT) -> str:
    """The job for a person: large payloads cut short unless `full`, times as `times`
    shows them."""
    dump = _abbreviated(full)

    lines = [
        f"job {doc['id']}  task {doc['task']}",
        f"  state    {doc['state']} (attempt {doc['attempt']})"
        + ("; parked in Postgres until due within the park horizon" if doc["parked"] else "")
        + (f"; waiting for {doc['waiting_for']}" if doc.get("waiting_for") else ""),
        f"  due at   {times(doc['due_at'])}",
        f"  args     {dump(doc['args'])}   kwargs {dump(doc['kwargs'])}",
        f"  result   {dump(doc['result']) if doc['result'] is not None else '-'}",
        f"  error    {_cut(doc['error'], full) or '-'}",
        "history (Postgres):",
    ]
    if doc.get("queue", "default") != "default" or doc.get("priority"):
        lines.insert(1, f"  queue    {doc['queue']} (priority {doc.get('priority', 0)})")
    for h in doc["history"]:
        lines.append(
            f"  {h['seq']:>3}  {times(h['at'])}  {h['from_state'] or '-':>9} -> "
            f"{h['to_state']:<9}  attempt {h['attempt']}  {h['daemon'] or ''}  "
            f"{_detail(h['detail'], h['daemon'], dump, times)}".rstrip()
        )
    if not doc["history"]:
        lines.append("  (nothing recorded yet)")
    return "\n".join(lines)


def _detail(detail: Any, daemon: str | None, dump: Callable[[Any], str], times: TimeText) -> str:
    """What a history row adds: for an update, what it changed; for any other event,
    its due time and its detail, less the job's task and arguments, which the header
    shows already."""
    if not isinstance(detail, dict):
        return "" if detail is None else dump(detail)
    if detail.get("update"):
        return _changes(detail, daemon, dump, times)
    rest = {
        k: v
        for k, v in detail.items()
        if k not in ("task", "args", "kwargs", "due_at", "queue", "priority")
    }
    due = detail.get("due_at")
    shown = [f"due {times(str(due))}"] if due is not None else []
    return "  ".join([*shown, dump(rest)] if rest else shown)


def _changes(
    detail: dict[str, Any], daemon: str | None, dump: Callable[[Any], str], times: TimeText
) -> str:
    """An update's row: each changed field with its new value, as `update --help`
    promises the history shows (retries as given, not the attempts stored)."""
    fields: dict[str, tuple[str, Callable[[Any], str]]] = {
        "args": ("args", dump),
        "kwargs": ("kwargs", dump),
        "due_at": ("due", lambda value: times(str(value))),
        "max_attempts": ("retries", _retries),
        "timeout": ("timeout", _seconds),
    }
    changes = [
        f"{label} {show(detail[key])}" for key, (label, show) in fields.items() if key in detail
    ]
    by = detail.get("by")
    said = "changed " + ", ".join(changes) + (f" (by {by})" if by and by != daemon else "")
    rest = {k: v for k, v in detail.items() if k not in fields and k not in ("update", "by")}
    return f"{said}  {dump(rest)}" if rest else said


def _retries(max_attempts: Any) -> str:
    """--retries N is stored as N + 1 attempts."""
    try:
        return str(int(max_attempts) - 1)
    except (TypeError, ValueError):
        return f"{max_attempts!r} (attempts)"


def _seconds(value: Any) -> str:
    try:
        return f"{float(value):g} s"
    except (TypeError, ValueError):
        return repr(value)


def _cut(text: str | None, full: bool) -> str | None:
    if text is None or full or len(text) <= SHOWN_CHARS * 5:
        return text
    return f"{text[: SHOWN_CHARS * 5]}… ({len(text):,} characters; --full shows everything)"
