"""`runner events` as text: one line per transition, as it happens.

Job ids, task names, errors and results are anyone's data: control characters in
them (a terminal escape sequence) are shown escaped, never sent to the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText
from runner.events.transition import Transition

SHOWN_CHARS = 200  # of a result or an error; --json prints them whole
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def render(batch: Sequence[Transition], as_json: bool, times: TimeText = UTC_TEXT) -> str:
    """The batch as lines: JSON objects (the live feed's data) or text for a person."""
    if as_json:
        return "\n".join(orjson.dumps(t.as_feed_json()).decode() for t in batch)
    return "\n".join(line(t, times) for t in batch)


def line(t: Transition, times: TimeText = UTC_TEXT) -> str:
    """time, task, job, from -> to, seq and attempt, who, and the result or error."""
    doc = t.as_json()
    words = [
        times(doc["at"]),
        _safe(t.task or "-"),
        _safe(t.job_id),
        f"{t.from_state or 'new':>9} -> {t.to_state:<9}",
        f"#{t.seq} attempt {t.attempt}",
        f"by {_safe(t.daemon)}",
    ]
    if "error" in doc:
        words.append(f"error: {_cut(doc['error'])}")
    elif "result" in doc:
        words.append(f"result: {_cut(doc['result'])}")
    return "  ".join(words)


def _cut(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}…"
    return _safe(text)


def _safe(text: str) -> str:
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode(), text)
